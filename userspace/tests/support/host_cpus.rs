//! The host's stand-in for the kernel's per-CPU storage (`rust/sys/percpu.rs`):
//! a slot for each of a fixed number of "CPUs", the calling thread's chosen by
//! [`set_cpu`]. Threads that set different CPUs count in different slots, as
//! CPUs do in the kernel; threads that share one race as a preempted caller
//! would, which the counters' atomic additions make exact.

use std::cell::Cell;

thread_local! {
    static CPU: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread "CPU" `cpu` from now on.
pub fn set_cpu(cpu: usize) {
    CPU.with(|c| c.set(cpu));
}

/// One `T` for each of a fixed number of CPUs, each on its own cache lines.
pub struct HostCpus<T> {
    slots: Vec<Padded<T>>,
}

/// A slot on cache lines of its own, as per-CPU areas are (each CPU's
/// area is a separate unit of pages).
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> HostCpus<T> {
    /// `cpus` slots of `T::default()`.
    pub fn new(cpus: usize) -> Self {
        Self {
            slots: (0..cpus.max(1)).map(|_| Padded(T::default())).collect(),
        }
    }
}

impl<T> HostCpus<T> {
    /// The calling thread's slot.
    pub fn local(&self) -> &T {
        &self.slots[CPU.with(Cell::get) % self.slots.len()].0
    }

    /// Every slot.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|p| &p.0)
    }
}

/// The module's logic sees it as it sees the kernel's per-CPU storage (the
/// including crate has `rust/counters.rs` as its `counters` module).
impl<T> crate::counters::PerCpu<T> for HostCpus<T> {
    fn local(&self) -> &T {
        HostCpus::local(self)
    }

    fn each(&self, f: &mut dyn FnMut(&T)) {
        self.iter().for_each(f)
    }
}
