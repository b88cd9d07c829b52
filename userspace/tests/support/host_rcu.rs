//! Readers of the settings on the host (`rust/rcu.rs`'s `ReadSide`): the
//! module's come from the hook adapter, inside `nf_hook()`'s RCU section.

use crate::rcu::ReadSide;

/// A reader where no writer runs at the same time: each test that uses it
/// writes the settings on the reading thread itself, before or after it
/// reads, or in another benchmark phase. No grace period can be waiting for
/// it, so it is trivially inside a read-side section of its own.
pub struct Alone;

// SAFETY: No writer runs concurrently with a holder of `Alone` (above), so
// no grace period begins while one is held, and none can end too early.
unsafe impl ReadSide for Alone {}

/// A reader inside the host tests' stand-in for RCU: a read lock whose
/// writer side is the grace period (`readers_see_whole_versions_of_a_list`).
pub struct Locked<'a>(pub std::sync::RwLockReadGuard<'a, ()>);

// SAFETY: A `Locked` holds the read lock for as long as it lives, and the
// stand-in's grace period takes the write lock, so it cannot end while one
// is held.
unsafe impl ReadSide for Locked<'_> {}
