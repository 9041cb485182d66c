//! `traffic-usage`: collect, store and report guest-network usage.

fn main() {
    println!("traffic-usage");
}
