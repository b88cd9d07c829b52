//! The guest's architecture, read from the kernel image itself: which QEMU
//! runs it, on which machine and console, and which build of the agent goes
//! into its initramfs. Nothing here depends on the host's own architecture
//! but [`Arch::host`].

/// An architecture the lab boots.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Arch {
    /// x86-64: a `bzImage` on QEMU's default PC machine.
    X86_64,
    /// arm64: an `Image` on QEMU's `virt` machine.
    Arm64,
}

/// Where an arm64 `Image` keeps its magic number (`ARM\x64`), in its
/// 64-byte header (Documentation/arch/arm64/booting.rst).
const ARM64_MAGIC_AT: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// Where a bzImage keeps its boot protocol's signature (`HdrS`)
/// (Documentation/arch/x86/boot.rst).
const X86_HDRS_AT: usize = 0x202;

impl Arch {
    /// The architecture of a kernel image, from its boot header; `None` for
    /// anything else (a compressed arm64 `vmlinuz`, an ELF `vmlinux`).
    pub fn of_image(image: &[u8]) -> Option<Arch> {
        if image.get(X86_HDRS_AT..X86_HDRS_AT + 4) == Some(b"HdrS") {
            Some(Arch::X86_64)
        } else if image.get(ARM64_MAGIC_AT..ARM64_MAGIC_AT + 4) == Some(ARM64_MAGIC) {
            Some(Arch::Arm64)
        } else {
            None
        }
    }

    /// The architecture this program was built for.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }

    /// Its name in the lab's messages (`KERNEL=lab-arm64` and `debian-arm64`
    /// spell arm64 the same way).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86-64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The QEMU program that emulates it.
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Arm64 => "qemu-system-aarch64",
        }
    }

    /// The Debian package that has [`Arch::qemu`].
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Arm64 => "qemu-system-arm",
        }
    }

    /// QEMU's machine and CPU. On arm64, `virt` (a device tree, a PL011
    /// UART, PSCI for the second CPU) with TCG's fastest complete CPU: `max`
    /// with its pointer authentication computed by QEMU's own cheap
    /// function rather than the architected cipher.
    pub fn machine(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[],
            Arch::Arm64 => &["-M", "virt", "-cpu", "max,pauth-impdef=on"],
        }
    }

    /// The serial console's device in the guest.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Arm64 => "ttyAMA0",
        }
    }

    /// Debian's multiarch name for its libraries (`/usr/lib/NAME`).
    pub fn multiarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// The Rust target the agent is built for when this is not the host's
    /// architecture: static (musl), so that it needs no library in the
    /// guest, and linked by rust-lld (userspace/.cargo/config.toml).
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Arch;

    #[test]
    fn images_are_told_apart_by_their_headers() {
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(Arch::of_image(&bz), Some(Arch::X86_64));
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(Arch::of_image(&image), Some(Arch::Arm64));
        assert_eq!(Arch::of_image(&[0u8; 0x300]), None);
        assert_eq!(Arch::of_image(b"ARM"), None);
        assert_eq!(Arch::of_image(b"\x1f\x8b\x08"), None);
    }
}
