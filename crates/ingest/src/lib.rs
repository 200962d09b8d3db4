//! CSV / XLSX readers and writers of baozhang, with validation reports.

pub mod claims;
pub mod intern;
pub mod output;
pub mod settle_run;
pub mod synth;
