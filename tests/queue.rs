//! The Queue programs of CATALOGUE.md sections 4 and 7, each run under the
//! audit: the catalogue's output, and nothing left behind.

mod common;

use common::audited;
use common::pi::assert_pi_program;
use proptest::prelude::*;

#[test]
fn queue_hello_prints_the_list_the_child_put() {
    let run = audited("queue-hello", &[]);
    run.assert_clean();
    assert_eq!(run.lines(), ["[42, None, 'hello']"]);
}

#[test]
fn queue_bounded_handles_both_requests_then_stops_on_timeout() {
    let run = audited("queue-bounded", &[]);
    run.assert_clean();
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines[..2] {
        let nums: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(nums.len(), 3, "{line}");
        assert_eq!(nums[0] + nums[1], nums[2], "{line}");
        assert!(line.contains(" + ") && line.contains(" = "), "{line}");
    }
    assert!(lines[2].contains("handler stops"), "{lines:?}");
}

#[test]
fn producer_consumer_consumes_every_item_once_in_order_and_stops_on_the_sentinel() {
    let run = audited("producer-consumer", &[]);
    run.assert_clean();
    let consumed: Vec<&str> = run
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("Consumed"))
        .collect();
    assert_eq!(
        consumed,
        [
            "Consumed 0",
            "Consumed 1",
            "Consumed 2",
            "Consumed 3",
            "Consumed 4"
        ]
    );
    assert_eq!(
        run.lines().last().copied(),
        Some("Consumer got the sentinel: done")
    );
    assert_eq!(
        run.lines()
            .iter()
            .filter(|l| l.starts_with("Produced"))
            .count(),
        5
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn pi_queue_equals_the_serial_sum(tens in prop_oneof![1u64..100, 1000u64..100_000]) {
        let n = tens * 10;
        assert_pi_program("pi-queue", n);
    }
}

#[test]
fn pi_queue_default_n_prints_the_tutorials_digits() {
    let run = audited("pi-queue", &[]);
    run.assert_clean();
    let got: f64 = run.output.trim().parse().unwrap();
    assert_eq!(format!("{got:.11}"), "3.14159262176");
}
