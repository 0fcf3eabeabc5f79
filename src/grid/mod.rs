//! The ThreeFold Grid: the GridProxy client (`proxy`), node selection (`select`), placement of a
//! pattern's VMs on nodes (`placement`) and the mnemonic (`mnemonic`).

pub mod mnemonic;
pub mod placement;
pub mod proxy;
pub mod select;
