//! wavegate's pure domain: flags, segments, contexts, bucketing, evaluation and the audit chain.
//!
//! **Boundary:** this crate does no I/O, spawns nothing and reads no clock; time and entropy come
//! in as values. Evaluation never fails: a problem becomes a [`eval::Reason`].
//!
//! # Example
//!
//! ```
//! use wavegate_core::{Context, Flag, SpecPath, evaluate, parse_flag_file};
//!
//! let file = parse_flag_file(r#"
//! flags:
//!   new-checkout:
//!     variants: { "on": true, "off": false }
//!     default: "off"
//!     environments:
//!       prod:
//!         enabled: true
//!         rules:
//!           - name: gradual
//!             split: { "on": 10%, "off": 90% }
//! "#, &["prod".to_string()]).unwrap();
//! let spec = &file.flags["new-checkout"];
//! let flag = Flag::compile("new-checkout", spec, "prod", &Default::default(), &SpecPath::root("flag")).unwrap();
//! let r = evaluate(&flag, &Context::with_key("user-174"));
//! assert_eq!(r.reason.as_str(), "SPLIT");
//! ```
#![warn(missing_docs)]

pub mod access;
pub mod audit;
pub mod bucket;
pub mod canonical;
pub mod constraint;
pub mod context;
pub mod error;
pub mod eval;
pub mod flag;
pub mod flagfile;
pub mod ledger;
pub mod murmur;
pub mod percent;
pub mod spec;
pub mod sse;
pub mod text;
pub mod timing;
pub mod unleash;
pub mod wire;

pub use context::{AttrValue, Context};
pub use error::{SpecError, SpecPath};
pub use eval::{EvalError, FlagLookup, Reason, Resolution, evaluate, evaluate_in, is_on};
pub use flag::{Flag, Segment, Segments, ValueType};
pub use flagfile::{FlagFileError, parse_flag_file};
pub use percent::Percent;
pub use spec::{FlagFile, FlagSpec, SegmentSpec};
