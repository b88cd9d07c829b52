//! nsfilter-lab: builds the lab VM's initramfs, boots it in QEMU, runs the
//! test suite or the user's commands inside it, and judges the result.
//!
//! The same program is the agent inside the VM (`nsfilter-lab guest`).

pub mod arch;
pub mod bench;
pub mod boot;
pub mod cli;
pub mod cpio;
pub mod error;
pub mod frames;
pub mod fuzz;
pub mod guest;
pub mod initramfs;
pub mod kmsg;
pub mod ktap;
pub mod options;
pub mod sys;
pub mod verdict;
pub mod vm;
