//! Keeping the resident set small on the Pi.
//!
//! Most of codriverd's resident memory is code pages of its own executable, and much of that
//! code runs only at start-up (argument parsing, the TOML config, D-Bus and BlueZ
//! registration). Once the daemon is READY, [`release_startup_code`] asks the kernel to page
//! those clean, file-backed pages out of this process (`MADV_PAGEOUT`, Linux ≥ 5.4). Nothing
//! is lost: the pages stay in the page cache and a page the daemon touches again is mapped
//! back by a minor fault. What stays resident afterwards is the code the daemon actually runs.
//! The shared libraries only calls use (libsbc, libspeexdsp and the libm it pulls in) are
//! paged out the same way: a call brings them back.

use std::io;

/// Shared libraries (file name prefixes) that only call audio uses.
const CALL_ONLY_LIBRARIES: [&str; 3] = ["libsbc.so", "libspeexdsp.so", "libm.so"];

/// Pages out the read-only mappings of this process's own executable and of the libraries
/// only calls use. Returns how many bytes
/// of mappings were advised. A kernel without `MADV_PAGEOUT` answers `EINVAL`, reported as an
/// error for the log; the daemon runs the same either way.
pub fn release_startup_code() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let exe = exe.to_string_lossy();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut advised = 0;
    for (start, end) in own_readonly_mappings(&maps, &exe) {
        let len = end - start;
        // SAFETY: `start..end` is a read-only, file-backed mapping of our own executable (or
        // of a call-only library) as the kernel lists it in /proc/self/maps. MADV_PAGEOUT only drops its pages from this
        // process's page tables; they are refaulted unchanged from the page cache when touched,
        // so no memory the program uses changes or becomes invalid.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        advised += len;
    }
    Ok(advised)
}

/// The `(start, end)` of every mapping of `exe` or of a call-only library that is not
/// writable.
fn own_readonly_mappings(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            let file = path.rsplit('/').next().unwrap_or(path);
            let ours = path == exe || CALL_ONLY_LIBRARIES.iter().any(|l| file.starts_with(l));
            if !ours || perms.contains('w') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_executables_readonly_mappings_only() {
        let maps = "\
5600a000-5600b000 r--p 00000000 fd:01 42 /usr/bin/codriverd
5600b000-5600f000 r-xp 00001000 fd:01 42 /usr/bin/codriverd
5600f000-56010000 rw-p 00005000 fd:01 42 /usr/bin/codriverd
7f0000000000-7f0000001000 r-xp 00000000 fd:01 7 /usr/lib/libc.so.6
7f0000100000-7f0000104000 r-xp 00000000 fd:01 8 /usr/lib/x86_64-linux-gnu/libsbc.so.1.3.1
7f0000104000-7f0000105000 rw-p 00004000 fd:01 8 /usr/lib/x86_64-linux-gnu/libsbc.so.1.3.1
7f0000200000-7f0000201000 r--p 00000000 fd:01 9 /usr/lib/x86_64-linux-gnu/libmnl.so.0
7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(
            own_readonly_mappings(maps, "/usr/bin/codriverd"),
            vec![
                (0x5600_a000, 0x5600_b000),
                (0x5600_b000, 0x5600_f000),
                (0x7f00_0010_0000, 0x7f00_0010_4000)
            ]
        );
    }

    #[test]
    fn releasing_our_own_code_keeps_the_process_running() {
        // On kernels without MADV_PAGEOUT this is an error; either way the test goes on
        // executing the code it just advised, which must still be there.
        let _ = release_startup_code();
        assert_eq!(own_readonly_mappings("", "x"), vec![]);
    }
}
