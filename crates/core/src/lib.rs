//! The domain of baozhang (保障): money, dates, identities, claims, the policy model and the
//! settlement engine. No I/O, no SQL, no HTTP — see docs/ARCHITECTURE.md.

pub mod audit;
pub mod catalogue;
pub mod claim;
pub mod date;
pub mod engine;
pub mod explain;
pub mod forms;
pub mod idcard;
pub mod identity;
pub mod money;
pub mod policy;
pub mod programmes;
pub mod reconcile;
pub mod reference;
pub mod risk;
pub mod supervise;
pub mod workdays;

pub use claim::{Bill, Claim, HospLevel, MedType};
pub use date::Date;
pub use engine::{resettle_year, reverse, settle, settle_in_place, Accumulators, Settlement};
pub use idcard::{IdCardNo, Sex};
pub use identity::{Identity, IdentitySet};
pub use money::{Fen, Ratio};
pub use policy::{parse_policy, Fund, Policy};
