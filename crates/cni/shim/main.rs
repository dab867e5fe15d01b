//! `podnet` CNI shim: the executable a container runtime runs for `"type": "podnet"`.
//!
//! It forwards the request (the `CNI_*` environment and stdin) to the plugin server of
//! its network namespace - an abstract unix socket `@podnet-cni`, served by the node
//! agent or by `podnet-cni serve` - and hands back the server's stdout and exit code.
//! With no server listening it execs the standalone plugin, `podnet-cni`, from its own
//! directory, which does the whole work itself.
//!
//! Why a separate program without the C library: on virtual machines, glibc's start-up
//! alone (CPU feature and cache detection through `cpuid`, which traps to the
//! hypervisor) takes ~0.9 ms of the ~1.3 ms a dynamically linked "return 0" costs to
//! run (docs/cni.md, "Performance"). This program is static, has no libc and no
//! allocator: it makes raw system calls (x86_64 Linux) and starts in ~0.3 ms.
//!
//! Built by `crates/cni/build.rs` with `rustc` directly (`-C panic=abort`, linked with
//! `-nostartfiles -nostdlib -static`), because a workspace member cannot have its own
//! panic strategy. The protocol is in `crates/cni/src/plugin/server.rs`.
#![no_std]
#![no_main]

use core::arch::{asm, naked_asm};

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_SOCKET: usize = 41;
const SYS_CONNECT: usize = 42;
const SYS_SENDTO: usize = 44;
const SYS_SHUTDOWN: usize = 48;
/// No SIGPIPE when the server has closed the connection (an error instead).
const MSG_NOSIGNAL: usize = 0x4000;
const SYS_EXECVE: usize = 59;
const SYS_READLINK: usize = 89;
const SYS_EXIT_GROUP: usize = 231;
const EINTR: isize = -4;

/// The abstract socket name (without the leading NUL), and the request's magic.
const SOCKET_NAME: &[u8] = b"podnet-cni";
const MAGIC: &[u8; 4] = b"PNC1";
/// The standalone plugin, looked up next to this program.
const FULL_PLUGIN: &[u8] = b"podnet-cni";

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail(b"internal error in the podnet CNI shim")
}

unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let r: isize;
    // SAFETY (caller): the arguments are valid for system call `n`.
    asm!("syscall", inlateout("rax") n as isize => r, in("rdi") a, in("rsi") b, in("rdx") c,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    r
}

/// `sendto(fd, buf, len, flags, NULL, 0)`.
unsafe fn send(fd: usize, buf: *const u8, len: usize, flags: usize) -> isize {
    let r: isize;
    // SAFETY (caller): `buf` points to `len` readable bytes.
    asm!("syscall", inlateout("rax") SYS_SENDTO as isize => r, in("rdi") fd, in("rsi") buf,
         in("rdx") len, in("r10") flags, in("r8") 0usize, in("r9") 0usize,
         lateout("rcx") _, lateout("r11") _, options(nostack));
    r
}

fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an integer and does not return.
    unsafe {
        asm!("syscall", in("rax") SYS_EXIT_GROUP, in("rdi") code as isize, options(noreturn, nostack));
    }
}

// The compiler may emit calls to these for copies and comparisons; there is no libc.
// Byte loops through volatile accesses, so that they are not turned back into calls.

#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i)));
    }
    d
}

#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) {
        return memcpy(d, s, n);
    }
    for i in (0..n).rev() {
        core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i)));
    }
    d
}

#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(d.add(i), c as u8);
    }
    d
}

#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        let (x, y) = (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i)));
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

#[no_mangle]
pub unsafe extern "C" fn strlen(p: *const u8) -> usize {
    let mut n = 0;
    while core::ptr::read_volatile(p.add(n)) != 0 {
        n += 1;
    }
    n
}

#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    memcmp(a, b, n)
}

/// Writes all of `data` to `fd` (stdout), or sends it (`socket`: without SIGPIPE).
fn write_all_to(fd: usize, socket: bool, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: `data` is a live slice.
        let n = unsafe {
            if socket {
                send(fd, data.as_ptr(), data.len(), MSG_NOSIGNAL)
            } else {
                syscall3(SYS_WRITE, fd, data.as_ptr() as usize, data.len())
            }
        };
        if n == EINTR {
            continue;
        }
        if n <= 0 {
            return false;
        }
        data = &data[n as usize..];
    }
    true
}

fn write_all(fd: usize, data: &[u8]) -> bool {
    write_all_to(fd, false, data)
}

/// Reads into `buf`; 0 at end of input, negative on error.
fn read(fd: usize, buf: &mut [u8]) -> isize {
    loop {
        // SAFETY: `buf` is a live, writable slice.
        let n = unsafe { syscall3(SYS_READ, fd, buf.as_mut_ptr() as usize, buf.len()) };
        if n != EINTR {
            return n;
        }
    }
}

/// A CNI error object ("try again later") on stdout, exit 1.
fn fail(msg: &[u8]) -> ! {
    write_all(1, b"{\"cniVersion\":\"1.1.0\",\"code\":11,\"msg\":\"");
    write_all(1, msg);
    write_all(1, b"\"}\n");
    exit(1)
}

static mut BUF: [u8; 65536] = [0; 65536];

#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _start() -> ! {
    // The kernel leaves argc, argv[], NULL, envp[], NULL at the stack pointer.
    naked_asm!("mov rdi, rsp", "and rsp, -16", "call {main}", "ud2", main = sym start);
}

unsafe extern "C" fn start(sp: *const usize) -> ! {
    let argc = *sp;
    let argv = sp.add(1) as *const *const u8;
    let envp = argv.add(argc + 1);
    // SAFETY: single-threaded; nothing else refers to BUF.
    let buf = &mut *core::ptr::addr_of_mut!(BUF);

    let fd = syscall3(SYS_SOCKET, 1, 1 | 0o2000000, 0); // AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC
    let mut addr = [0u8; 2 + 1 + SOCKET_NAME.len()];
    addr[0] = 1; // sun_family = AF_UNIX; sun_path[0] = 0: abstract
    addr[3..].copy_from_slice(SOCKET_NAME);
    if fd < 0 || syscall3(SYS_CONNECT, fd as usize, addr.as_ptr() as usize, addr.len()) < 0 {
        if fd >= 0 {
            syscall3(SYS_CLOSE, fd as usize, 0, 0);
        }
        exec_full(buf, argv, envp);
    }
    let fd = fd as usize;

    // The request: magic, the CNI_* variables' length and entries ("KEY=VALUE\0").
    let mut len = 8;
    let mut e = envp;
    while !(*e).is_null() {
        let var = cstr(*e);
        if var.starts_with(b"CNI_") {
            if len + var.len() + 1 > buf.len() {
                fail(b"the CNI_* environment is larger than 64 KiB");
            }
            buf[len..len + var.len()].copy_from_slice(var);
            buf[len + var.len()] = 0;
            len += var.len() + 1;
        }
        e = e.add(1);
    }
    buf[..4].copy_from_slice(MAGIC);
    buf[4..8].copy_from_slice(&((len - 8) as u32).to_le_bytes());
    if !write_all_to(fd, true, &buf[..len]) {
        fail(b"the podnet plugin server closed the connection");
    }
    // Then stdin, to its end.
    loop {
        let n = read(0, buf);
        if n < 0 {
            fail(b"reading the network configuration from stdin failed");
        }
        if n == 0 {
            break;
        }
        if !write_all_to(fd, true, &buf[..n as usize]) {
            fail(b"the podnet plugin server closed the connection");
        }
    }
    syscall3(SYS_SHUTDOWN, fd, 1, 0); // SHUT_WR: end of the request

    // The answer: the exit code (4 bytes), then stdout to the end.
    let mut code = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = read(fd, &mut code[got..]);
        if n <= 0 {
            fail(b"the podnet plugin server ended without an answer");
        }
        got += n as usize;
    }
    loop {
        let n = read(fd, buf);
        if n <= 0 {
            break;
        }
        write_all(1, &buf[..n as usize]);
    }
    exit(i32::from_le_bytes(code))
}

/// The NUL-terminated string at `p`.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    core::slice::from_raw_parts(p, strlen(p))
}

/// No server: exec `podnet-cni` from this program's directory, with the same
/// arguments, environment and (unread) stdin.
unsafe fn exec_full(buf: &mut [u8], argv: *const *const u8, envp: *const *const u8) -> ! {
    let n = syscall3(
        SYS_READLINK,
        b"/proc/self/exe\0".as_ptr() as usize,
        buf.as_mut_ptr() as usize,
        buf.len() - FULL_PLUGIN.len() - 2,
    );
    if n > 0 {
        let n = n as usize;
        if let Some(slash) = buf[..n].iter().rposition(|&c| c == b'/') {
            let end = slash + 1 + FULL_PLUGIN.len();
            buf[slash + 1..end].copy_from_slice(FULL_PLUGIN);
            buf[end] = 0;
            syscall3(SYS_EXECVE, buf.as_ptr() as usize, argv as usize, envp as usize);
        }
    }
    fail(b"no podnet plugin server in this network namespace, and no podnet-cni next to the shim to run instead")
}
