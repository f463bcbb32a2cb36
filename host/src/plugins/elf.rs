//! A structural check of an ELF shared object before `dlopen`.
//!
//! The dynamic loader maps segments straight from the file: if the file is shorter than its headers say
//! (a truncated upload, a copy that ran out of disk), touching a segment past the end raises SIGBUS and
//! kills the whole host. Checking that every header and loadable segment lies inside the file turns that
//! into a refusal with a reason.

/// Checks the ELF header, program headers and section header table of `bytes`.
pub fn check_shared_object(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 16 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file (bad magic)".to_owned());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        other => return Err(format!("unknown ELF class {other}")),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        other => return Err(format!("unknown ELF data encoding {other}")),
    };
    let reader = Reader { bytes, little };
    let header_len = if wide { 64 } else { 52 };
    if bytes.len() < header_len {
        return Err(format!(
            "truncated: {} bytes, shorter than the ELF header",
            bytes.len()
        ));
    }
    let e_type = reader.u16(16)?;
    if e_type != 3 {
        return Err(format!("ELF type {e_type} is not a shared object (type 3)"));
    }
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = if wide {
        (
            reader.u64(32)?,
            reader.u64(40)?,
            reader.u16(54)?,
            reader.u16(56)?,
            reader.u16(58)?,
            reader.u16(60)?,
        )
    } else {
        (
            u64::from(reader.u32(28)?),
            u64::from(reader.u32(32)?),
            reader.u16(42)?,
            reader.u16(44)?,
            reader.u16(46)?,
            reader.u16(48)?,
        )
    };
    let len = bytes.len() as u64;
    let table_end = |offset: u64, entry: u16, count: u16| {
        offset.checked_add(u64::from(entry) * u64::from(count))
    };
    match table_end(phoff, phentsize, phnum) {
        Some(end) if end <= len => {}
        _ => {
            return Err(format!(
                "truncated: program headers end past the file's {len} bytes"
            ));
        }
    }
    if shoff != 0 {
        match table_end(shoff, shentsize, shnum) {
            Some(end) if end <= len => {}
            _ => {
                return Err(format!(
                    "truncated: section headers end past the file's {len} bytes"
                ));
            }
        }
    }
    for index in 0..u64::from(phnum) {
        let at = usize::try_from(phoff + index * u64::from(phentsize))
            .map_err(|_| "program header offset overflows".to_owned())?;
        let p_type = reader.u32(at)?;
        let (offset, filesz) = if wide {
            (reader.u64(at + 8)?, reader.u64(at + 32)?)
        } else {
            (
                u64::from(reader.u32(at + 4)?),
                u64::from(reader.u32(at + 16)?),
            )
        };
        // PT_LOAD segments are mapped from the file; the others must at least point inside it.
        if offset.checked_add(filesz).is_none_or(|end| end > len) {
            return Err(format!(
                "truncated: segment {index} (type {p_type:#x}) covers bytes {offset}..{} of a {len}-byte file",
                offset.saturating_add(filesz)
            ));
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn take<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        self.bytes
            .get(at..at + N)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("truncated: header field at byte {at} is past the end"))
    }

    fn u16(&self, at: usize) -> Result<u16, String> {
        let b = self.take::<2>(at)?;
        Ok(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    fn u32(&self, at: usize) -> Result<u32, String> {
        let b = self.take::<4>(at)?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn u64(&self, at: usize) -> Result<u64, String> {
        let b = self.take::<8>(at)?;
        Ok(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_library() -> Option<Vec<u8>> {
        // Any shared object of the system will do; libc is always there on Linux.
        [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
        ]
        .iter()
        .find_map(|p| std::fs::read(p).ok())
    }

    #[test]
    fn accepts_a_real_shared_object_and_refuses_its_truncations() {
        let Some(lib) = own_library() else {
            panic!("no libc.so.6 found to test with");
        };
        check_shared_object(&lib).expect("libc is a valid shared object");
        for cut in [10, 60, 4096, lib.len() / 2, lib.len() - 1] {
            let err = check_shared_object(&lib[..cut]).unwrap_err();
            assert!(
                err.contains("truncated") || err.contains("magic"),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn refuses_text() {
        assert!(
            check_shared_object(b"hello, I am not a library")
                .unwrap_err()
                .contains("magic")
        );
    }
}
