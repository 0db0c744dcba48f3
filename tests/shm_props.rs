//! Properties of section 5's mechanisms, over random sizes, values and kill
//! times. Case counts are small: every case forks processes.
//!
//! Every property runs under an `audit::Scope` (children reaped, names
//! unlinked, System V sets removed).

mod shm_common;

use ipckit::audit::Scope;
use ipckit::audit::ledger::ObjectKind;
use ipckit::shm::{Array, Char, PosixName, Typecode, Value, ValueOptions};
use ipckit::sync::{Lock, PosixSemaphore, Semaphore, SysvSemSet};
use nix::sys::signal::Signal;
use proptest::prelude::*;
use shm_common::{DEADLINE, Slots, join, spawn};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// N processes each add 1 to a shared Value M times under its lock: no
    /// update is lost.
    #[test]
    fn n_processes_times_m_increments_under_the_lock_total_n_times_m(
        n in 2usize..=4, m in 1u32..=300,
    ) {
        let mut scope = Scope::new();
        let v = Value::new(0i64).unwrap();
        let children = (0..n)
            .map(|_| spawn(&mut scope, || {
                for _ in 0..m {
                    let _guard = v.get_lock()?.lock_timeout(DEADLINE)?;
                    let seen = v.get();
                    std::thread::yield_now(); // widen the window a lost update needs
                    v.set(seen + 1);
                }
                Ok(())
            }))
            .collect();
        join(children);
        prop_assert_eq!(v.get(), (n as i64) * i64::from(m));
        scope.assert_clean();
    }

    /// A semaphore of count c never admits more than c holders at once
    /// (measured with a shared high-water mark), and gets every unit back.
    #[test]
    fn a_semaphore_of_count_c_never_admits_more_than_c(
        c in 1u32..=3, n in 2usize..=5, rounds in 1u32..=15,
    ) {
        let mut scope = Scope::new();
        let sem = Semaphore::new(c).unwrap();
        let slots = Slots::new(2); // 0: holders now, 1: most holders seen
        let children = (0..n)
            .map(|_| spawn(&mut scope, || {
                for _ in 0..rounds {
                    sem.acquire_timeout(DEADLINE)?;
                    let now = slots.at(0).fetch_add(1, Ordering::SeqCst) + 1;
                    slots.at(1).fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                    slots.at(0).fetch_sub(1, Ordering::SeqCst);
                    sem.release()?;
                }
                Ok(())
            }))
            .collect();
        join(children);
        let most = slots.at(1).load(Ordering::SeqCst);
        prop_assert!((1..=c).contains(&most), "{most} holders at once, limit {c}");
        prop_assert_eq!(sem.get_value().unwrap(), c);
        scope.assert_clean();
    }

    /// A Lock holder killed at a random point: the lock is recovered within a
    /// deadline, and unless the guard says the holder died, the data it guards
    /// (two slots written one after the other) is consistent.
    #[test]
    fn a_lock_holder_killed_at_a_random_point_is_recovered(delay_us in 0u64..5000) {
        let mut scope = Scope::new();
        let lock = Lock::new().unwrap();
        let slots = Slots::new(3); // 0, 1: the guarded pair; 2: rounds done
        let mut child = spawn(&mut scope, || loop {
            let _guard = lock.acquire()?;
            let next = slots.at(0).load(Ordering::SeqCst) + 1;
            slots.at(0).store(next, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(50));
            slots.at(1).store(next, Ordering::SeqCst);
            drop(_guard);
            slots.at(2).fetch_add(1, Ordering::SeqCst);
        });
        slots.wait_for(2, 1);
        std::thread::sleep(Duration::from_micros(delay_us));
        child.signal(Signal::SIGKILL).unwrap();
        child.wait_deadline(DEADLINE).unwrap();
        let guard = lock.acquire_timeout(Duration::from_secs(5)).unwrap();
        let (a, b) = (slots.at(0).load(Ordering::SeqCst), slots.at(1).load(Ordering::SeqCst));
        if !guard.previous_owner_died() {
            prop_assert_eq!(a, b, "not told of a death, so the pair must be whole");
        }
        drop(guard);
        scope.assert_clean();
    }

    /// A System V semaphore holder killed at a random point: `SEM_UNDO` gives
    /// its unit back, and a timed acquire succeeds at once.
    #[test]
    fn a_sysv_holder_killed_at_a_random_point_is_undone(delay_us in 0u64..5000) {
        let mut scope = Scope::new();
        let set = SysvSemSet::create(1, 1).unwrap();
        scope.track_sysv(ObjectKind::SysvSem, set.id());
        let slots = Slots::new(1);
        let mut child = spawn(&mut scope, || loop {
            set.acquire(0)?;
            std::thread::sleep(Duration::from_micros(50));
            set.release(0)?;
            slots.at(0).fetch_add(1, Ordering::SeqCst);
        });
        slots.wait_for(0, 1);
        std::thread::sleep(Duration::from_micros(delay_us));
        child.signal(Signal::SIGKILL).unwrap();
        child.wait_deadline(DEADLINE).unwrap();
        prop_assert_eq!(set.get_value(0).unwrap(), 1, "the unit came back");
        set.acquire_timeout(0, Duration::from_secs(5)).unwrap();
        set.release(0).unwrap();
        drop(set);
        scope.assert_clean();
    }
}

/// Values of type T survive a trip through an anonymous Value, an Array and
/// a named Value made with each typecode that names T and opened by name.
fn round_trip<T: Typecode>(values: &[T]) -> Result<(), TestCaseError> {
    let scope = Scope::new();
    let same = |a: &[T], b: &[T]| format!("{a:?}") == format!("{b:?}");
    for &v in values {
        let value = Value::new(v).unwrap();
        prop_assert!(same(&[value.get()], &[v]));
        prop_assert_eq!(value.typecode(), T::TYPECODE);
    }
    let arr = Array::from_slice(values).unwrap();
    prop_assert!(same(&arr.to_vec(), values));
    let codes = std::iter::once(T::TYPECODE).chain(T::ALIASES.chars());
    for (i, code) in codes.enumerate() {
        prop_assert!(ipckit::shm::describe(code).is_ok());
        let name = PosixName::new(&scope.name(&format!("tc{i}"))).unwrap();
        let options = ValueOptions {
            name: Some(name.clone()),
            typecode: Some(code),
            ..ValueOptions::default()
        };
        let made = Array::from_slice_with(values, &options).unwrap();
        let opened = Array::<T>::open(&name).unwrap();
        prop_assert_eq!(opened.typecode(), code);
        prop_assert!(same(&opened.to_vec(), values));
        drop((made, opened));
    }
    scope.assert_clean();
    Ok(())
}

macro_rules! round_trips {
    ($($test:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(config(16))]
            $(
                #[test]
                fn $test(values in proptest::collection::vec($strategy, 1..20)) {
                    round_trip(&values)?;
                }
            )*
        }
    };
}

round_trips! {
    typecode_c_round_trips: any::<u8>().prop_map(Char);
    typecode_b_round_trips: any::<i8>();
    typecode_upper_b_round_trips: any::<u8>();
    typecode_h_round_trips: any::<i16>();
    typecode_upper_h_round_trips: any::<u16>();
    typecode_i_round_trips: any::<i32>();
    typecode_upper_i_round_trips: any::<u32>();
    typecode_q_and_l_round_trip: any::<i64>();
    typecode_upper_q_and_l_round_trip: any::<u64>();
    typecode_f_round_trips: any::<f32>();
    typecode_d_round_trips: any::<f64>();
}

#[test]
fn every_typecode_has_a_rust_type_that_accepts_it() {
    fn accepts<T: Typecode>(code: char) -> bool {
        T::accepts(code)
    }
    for code in ipckit::shm::TYPECODES {
        let takers = [
            accepts::<Char>(code),
            accepts::<i8>(code),
            accepts::<u8>(code),
            accepts::<i16>(code),
            accepts::<u16>(code),
            accepts::<i32>(code),
            accepts::<u32>(code),
            accepts::<i64>(code),
            accepts::<u64>(code),
            accepts::<f32>(code),
            accepts::<f64>(code),
        ];
        assert_eq!(takers.iter().filter(|t| **t).count(), 1, "{code}");
    }
}
