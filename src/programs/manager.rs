//! CATALOGUE.md section 6, the Manager programs: `manager-list`,
//! `manager-namespace`, and `pi-manager` (section 7).

use super::{Program, join_all, require_single_thread, start};
use crate::error::Result;
use crate::manager::{ListProxy, Manager, ManagerConfig, Op, PyValue};
use crate::pi;

/// The programs of this section.
pub const PROGRAMS: &[Program] = &[
    Program {
        id: "manager-list",
        summary: "a Manager list of records: one child appends, another prints them all",
        run: manager_list,
    },
    Program {
        id: "manager-namespace",
        summary: "a Manager Namespace: a child updates x and y, the parent sees the change",
        run: manager_namespace,
    },
    Program {
        id: "pi-manager",
        summary: "pi: ten children each store their partial sum in a Manager list",
        run: pi_manager,
    },
];

/// `manager-list`: `with Manager() as manager: records = manager.list([...])`;
/// process 1 appends a record; after it is joined, process 2 prints them all.
fn manager_list(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let manager = Manager::start(&ManagerConfig::default())?;
    let records = manager.list(vec![
        ("Computers", 1).into(),
        ("Histoty", 5).into(),
        ("Hindi", 9).into(),
    ])?;
    let r = records.clone();
    join_all([start(move || insert_record(&r, ("English", 3).into()))?])?;
    let r = records.clone();
    join_all([start(move || print_records(&r))?])?;
    Ok(0)
}

fn insert_record(records: &ListProxy, record: PyValue) -> Result<()> {
    records.append(record)?;
    println!("A New record is added");
    Ok(())
}

fn print_records(records: &ListProxy) -> Result<()> {
    for record in records.to_vec()? {
        let (name, score) = match record.as_items() {
            Ok([name, score]) => (name.clone(), score.clone()),
            _ => (record.clone(), PyValue::None),
        };
        let name = name
            .as_str()
            .map(str::to_string)
            .unwrap_or(name.to_string());
        println!("Name: {name}\nScore: {score}");
    }
    Ok(())
}

/// `manager-namespace`: `ns = manager.Namespace(); ns.x = 1; ns.y = 1`; a
/// child does `ns.x += 5; ns.y *= 10`; the parent prints before and after.
fn manager_namespace(_args: &[String]) -> Result<i32> {
    require_single_thread()?;
    let manager = Manager::start(&ManagerConfig::default())?;
    let ns = manager.namespace()?;
    ns.set("x", 1)?;
    ns.set("y", 1)?;
    println!("before {ns}");
    let child_ns = ns.clone();
    join_all([start(move || {
        // Python's `ns.x += 5` is a get and then a set: another process could
        // act in between. `update` does it in the server in one step.
        child_ns.update("x", Op::Add(5.into()))?;
        child_ns.update("y", Op::Mul(10.into()))?;
        Ok(())
    })?])?;
    println!("after {ns}");
    Ok(0)
}

/// `pi-manager`: a managed list of ten partial sums, one per child.
fn pi_manager(args: &[String]) -> Result<i32> {
    let n = pi::parse_n(args)?;
    require_single_thread()?;
    let manager = Manager::start(&ManagerConfig::default())?;
    let sums = manager.list(vec![PyValue::Float(0.0); pi::PARTS as usize])?;
    let mut children = Vec::new();
    for i in 0..pi::PARTS {
        let sums = sums.clone();
        children.push(start(move || {
            sums.set(i as i64, pi::partial_sum(pi::slice(i, n)))
                .map(|_| ())
        })?);
    }
    join_all(children)?;
    let total: f64 = sums
        .to_vec()?
        .iter()
        .map(PyValue::as_float)
        .sum::<Result<f64>>()?;
    pi::print_answer(pi::pi_from(total));
    Ok(0)
}
