pub mod convert;
pub mod model;
