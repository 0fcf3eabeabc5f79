//! The ThreeFold Grid: the GridProxy client (`proxy`), node selection (`select`), placement of a
//! pattern's VMs on nodes (`placement`), the mnemonic (`mnemonic`) and what a grid error says
//! about its cause (`errors`).

pub mod errors;
pub mod mnemonic;
pub mod placement;
pub mod proxy;
pub mod select;
