//! [`TrafficAnswer`] and [`ByteCounts`]: examples, and the answer against a
//! `BTreeMap` of its pairs, the plain model of what it must do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use usage_model::{ByteCounts, Error, QueryTag, TrafficAnswer};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn overflow_names_both_operands() {
    let err = ByteCounts {
        sent: 1,
        received: u64::MAX,
    }
    .checked_add(ByteCounts {
        sent: 1,
        received: 2,
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("byte count overflow adding {} and 2", u64::MAX)
    );
}

#[test]
fn insert_refuses_duplicates_and_keeps_first() {
    let mut answer = TrafficAnswer::new();
    let one = ByteCounts {
        sent: 1,
        received: 1,
    };
    answer.insert(QueryTag(0), ip("10.0.0.1"), one).unwrap();
    let err = answer
        .insert(QueryTag(0), ip("10.0.0.1"), ByteCounts::ZERO)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate answer for query 0 and ip 10.0.0.1"
    );
    assert_eq!(answer.get(QueryTag(0), ip("10.0.0.1")), Some(one));
    answer
        .insert(QueryTag(1), ip("10.0.0.1"), ByteCounts::ZERO)
        .unwrap();
    assert_eq!(answer.len(), 2);
}

#[test]
fn add_accumulates_and_leaves_counts_on_overflow() {
    let mut answer = TrafficAnswer::new();
    let (tag, addr) = (QueryTag(3), ip("2001:db8::1"));
    answer
        .add(
            tag,
            addr,
            ByteCounts {
                sent: 5,
                received: 0,
            },
        )
        .unwrap();
    answer
        .add(
            tag,
            addr,
            ByteCounts {
                sent: 1,
                received: 7,
            },
        )
        .unwrap();
    assert_eq!(
        answer.get(tag, addr),
        Some(ByteCounts {
            sent: 6,
            received: 7
        })
    );
    assert!(
        answer
            .add(
                tag,
                addr,
                ByteCounts {
                    sent: u64::MAX,
                    received: 0
                }
            )
            .is_err()
    );
    assert_eq!(
        answer.get(tag, addr),
        Some(ByteCounts {
            sent: 6,
            received: 7
        })
    );
    assert_eq!(
        answer.remove(tag, addr),
        Some(ByteCounts {
            sent: 6,
            received: 7
        })
    );
    assert!(answer.is_empty());
}

#[test]
fn merge_stops_at_the_first_shared_pair() {
    let mut left = TrafficAnswer::new();
    left.insert(QueryTag(0), ip("10.0.0.2"), ByteCounts::ZERO)
        .unwrap();
    let mut right = TrafficAnswer::new();
    right
        .insert(QueryTag(0), ip("10.0.0.1"), ByteCounts::ZERO)
        .unwrap();
    right
        .insert(QueryTag(0), ip("10.0.0.2"), ByteCounts::ZERO)
        .unwrap();
    assert!(matches!(
        left.merge(right),
        Err(Error::DuplicateAnswer {
            tag: QueryTag(0),
            ..
        })
    ));
    let pairs: Vec<_> = left.iter().map(|(tag, ip, _)| (tag, ip)).collect();
    assert_eq!(
        pairs,
        [(QueryTag(0), ip("10.0.0.1")), (QueryTag(0), ip("10.0.0.2"))]
    );
}

type Model = BTreeMap<(QueryTag, IpAddr), ByteCounts>;

#[derive(Clone, Debug)]
enum Op {
    Insert(QueryTag, IpAddr, ByteCounts),
    Add(QueryTag, IpAddr, ByteCounts),
    Remove(QueryTag, IpAddr),
    Merge(Vec<(QueryTag, IpAddr, ByteCounts)>),
}

/// Few tags and addresses, so operations meet the same pairs.
fn key() -> impl Strategy<Value = (QueryTag, IpAddr)> {
    (
        0u32..4,
        prop_oneof![
            (0u8..40).prop_map(|x| IpAddr::from([10, 0, 0, x])),
            (0u16..10).prop_map(|x| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, x])),
        ],
    )
        .prop_map(|(tag, ip)| (QueryTag(tag), ip))
}

fn counts() -> impl Strategy<Value = ByteCounts> {
    prop_oneof![
        (0u64..1000, 0u64..1000).prop_map(|(sent, received)| ByteCounts { sent, received }),
        Just(ByteCounts {
            sent: u64::MAX,
            received: 1
        }),
    ]
}

fn row() -> impl Strategy<Value = (QueryTag, IpAddr, ByteCounts)> {
    (key(), counts()).prop_map(|((tag, ip), counts)| (tag, ip, counts))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => row().prop_map(|(tag, ip, counts)| Op::Insert(tag, ip, counts)),
        3 => row().prop_map(|(tag, ip, counts)| Op::Add(tag, ip, counts)),
        1 => key().prop_map(|(tag, ip)| Op::Remove(tag, ip)),
        1 => proptest::collection::vec(row(), 0..30).prop_map(Op::Merge),
    ]
}

/// The model of `from_rows`: insert in turn, stop at a duplicate.
fn model_from_rows(rows: &[(QueryTag, IpAddr, ByteCounts)]) -> Result<Model, Error> {
    let mut model = Model::new();
    for &(tag, ip, counts) in rows {
        if model.insert((tag, ip), counts).is_some() {
            return Err(Error::DuplicateAnswer { tag, ip });
        }
    }
    Ok(model)
}

fn pairs(model: &Model) -> Vec<(QueryTag, IpAddr, ByteCounts)> {
    model.iter().map(|(&(tag, ip), &c)| (tag, ip, c)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn behaves_as_an_ordered_map(ops in proptest::collection::vec(op(), 0..300)) {
        let mut answer = TrafficAnswer::new();
        let mut model = Model::new();
        for op in ops {
            match op {
                Op::Insert(tag, ip, counts) => {
                    let expected = match model.entry((tag, ip)) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            Err(Error::DuplicateAnswer { tag, ip }.to_string())
                        }
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(counts);
                            Ok(())
                        }
                    };
                    let got = answer.insert(tag, ip, counts).map_err(|e| e.to_string());
                    prop_assert_eq!(got, expected);
                }
                Op::Add(tag, ip, counts) => {
                    let old = model.get(&(tag, ip)).copied().unwrap_or_default();
                    let expected = match old.checked_add(counts) {
                        Ok(sum) => {
                            model.insert((tag, ip), sum);
                            Ok(())
                        }
                        Err(err) => Err(err.to_string()),
                    };
                    let got = answer.add(tag, ip, counts).map_err(|e| e.to_string());
                    prop_assert_eq!(got, expected);
                }
                Op::Remove(tag, ip) => {
                    prop_assert_eq!(answer.remove(tag, ip), model.remove(&(tag, ip)));
                }
                Op::Merge(rows) => {
                    // `other` is built in the order given; duplicates
                    // within it are dropped, keeping the first.
                    let mut unique = Model::new();
                    let mut other = TrafficAnswer::new();
                    for &(tag, ip, counts) in &rows {
                        if let std::collections::btree_map::Entry::Vacant(slot) =
                            unique.entry((tag, ip))
                        {
                            slot.insert(counts);
                            other.insert(tag, ip, counts).unwrap();
                        }
                    }
                    let mut expected = Ok(());
                    for (&(tag, ip), &counts) in &unique {
                        if model.contains_key(&(tag, ip)) {
                            expected = Err(Error::DuplicateAnswer { tag, ip }.to_string());
                            break;
                        }
                        model.insert((tag, ip), counts);
                    }
                    let got = answer.merge(other).map_err(|e| e.to_string());
                    prop_assert_eq!(got, expected);
                }
            }
            prop_assert_eq!(answer.len(), model.len());
            prop_assert_eq!(answer.is_empty(), model.is_empty());
        }
        prop_assert_eq!(answer.iter().collect::<Vec<_>>(), pairs(&model));
        for (&(tag, ip), &counts) in &model {
            prop_assert_eq!(answer.get(tag, ip), Some(counts));
        }
        for (tag, ip) in [(QueryTag(9), IpAddr::from([10, 0, 0, 1])), (QueryTag(0), IpAddr::from([10, 9, 9, 9]))] {
            prop_assert_eq!(answer.get(tag, ip), None);
        }
        let rebuilt = TrafficAnswer::from_rows(answer.iter()).unwrap();
        prop_assert_eq!(&rebuilt, &answer);
        prop_assert_eq!(format!("{rebuilt:?}"), format!("TrafficAnswer {{ counts: {model:?} }}"));
    }

    #[test]
    fn from_rows_is_inserting_in_turn(
        rows in proptest::collection::vec(row(), 0..60),
        sort in any::<bool>(),
    ) {
        let mut rows = rows;
        if sort {
            rows.sort_unstable_by_key(|&(tag, ip, _)| (tag, ip));
        }
        let got = TrafficAnswer::from_rows(rows.iter().copied());
        match model_from_rows(&rows) {
            Ok(model) => {
                let answer = got.unwrap();
                prop_assert_eq!(answer.iter().collect::<Vec<_>>(), pairs(&model));
            }
            Err(expected) => {
                prop_assert_eq!(got.unwrap_err().to_string(), expected.to_string());
            }
        }
    }
}

#[test]
fn many_pairs_in_reverse_order_stay_ordered() {
    let mut answer = TrafficAnswer::new();
    for i in (0..5_000u32).rev() {
        let ip = IpAddr::from((i % 1000).to_be_bytes());
        answer
            .insert(QueryTag(i / 1000), ip, ByteCounts::ZERO)
            .unwrap();
    }
    assert_eq!(answer.len(), 5_000);
    let keys: Vec<_> = answer.iter().map(|(tag, ip, _)| (tag, ip)).collect();
    assert!(keys.is_sorted_by(|a, b| a < b));
    assert!(
        answer
            .get(QueryTag(4), IpAddr::from([0, 0, 3, 231]))
            .is_some()
    );
}
