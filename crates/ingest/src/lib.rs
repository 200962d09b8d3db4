//! CSV / XLSX readers and writers of baozhang, with validation reports, roster import and
//! reconciliation.

pub mod catalogue;
pub mod claims;
pub mod county;
pub mod divisions;
pub mod health;
pub mod health_demo;
pub mod intern;
pub mod normalise;
pub mod output;
pub mod oversight;
pub mod policy_compare;
pub mod policy_tests;
pub mod programmes;
pub mod registry_settle;
pub mod resettle_report;
pub mod rosters;
pub mod settle_run;
pub mod stmt_file;
pub mod synth;
pub mod table;
pub mod worklist;
