//! Symbolic `--chmod` modes (`u+x,go-w`, `a=rX`, `g=u`), as BuildKit applies them: BSD
//! `setmode(3)` semantics with a zero umask (BuildKit uses a Go port of it).

/// setuid and setgid plus every permission bit (BSD's `STANDARD_BITS`).
const STANDARD: u32 = 0o6777;
const STICKY: u32 = 0o1000;
const RWXO: u32 = 0o007;

const CLEAR: u8 = 1;
const SET: u8 = 2;
const GBITS: u8 = 4;
const OBITS: u8 = 8;
const UBITS: u8 = 16;

/// A malformed symbolic mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chmod {0:?}: expected octal bits or a symbolic mode such as u+x,go-w")]
pub struct BadMode(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cmd {
    op: u8,
    flags: u8,
    bits: u32,
}

/// A parsed mode expression, applied to each file's own mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeSet {
    cmds: Vec<Cmd>,
}

impl ModeSet {
    /// Parses octal (`0755`) or symbolic (`u=rwx,go=rx`, `+X`) text.
    pub fn parse(text: &str) -> Result<Self, BadMode> {
        let bad = || BadMode(text.to_string());
        let s = text.as_bytes();
        let Some(&first) = s.first() else {
            return Err(bad());
        };
        let mut m = ModeSet { cmds: Vec::new() };
        if first.is_ascii_digit() {
            let v = u32::from_str_radix(text, 8).map_err(|_| bad())?;
            if v & !(STANDARD | STICKY) != 0 {
                return Err(bad());
            }
            m.add(b'=', STANDARD | STICKY, v);
            return Ok(m);
        }
        let mut i = 0;
        let mut equal_done = false;
        loop {
            let mut who = 0u32;
            loop {
                match s.get(i) {
                    None => return Err(bad()),
                    Some(b'a') => who |= STANDARD,
                    Some(b'u') => who |= 0o4000 | 0o700,
                    Some(b'g') => who |= 0o2000 | 0o070,
                    Some(b'o') => who |= RWXO,
                    Some(_) => break,
                }
                i += 1;
            }
            loop {
                let op = *s.get(i).ok_or_else(bad)?;
                i += 1;
                match op {
                    b'+' | b'-' => {}
                    b'=' => equal_done = false,
                    _ => return Err(bad()),
                }
                who &= !STICKY;
                let (mut perm, mut perm_x) = (0u32, 0u32);
                loop {
                    let b = s.get(i).copied().unwrap_or(0);
                    match b {
                        b'r' => perm |= 0o444,
                        b's' => {
                            if who == 0 || who & !RWXO != 0 {
                                perm |= 0o6000;
                            }
                        }
                        b't' => {
                            if who == 0 || who & !RWXO != 0 {
                                who |= STICKY;
                                perm |= STICKY;
                            }
                        }
                        b'w' => perm |= 0o222,
                        b'X' => {
                            if op != b'-' {
                                perm_x = 0o111;
                            } else {
                                perm |= 0o111;
                            }
                        }
                        b'x' => perm |= 0o111,
                        b'u' | b'g' | b'o' => {
                            if perm != 0 {
                                m.add_who(op, who, perm);
                                perm = 0;
                            }
                            if op == b'=' {
                                equal_done = true;
                            }
                            if perm_x != 0 {
                                m.add_who(b'X', who, perm_x);
                                perm_x = 0;
                            }
                            m.add_copy(b, who, op);
                        }
                        _ => {
                            if perm != 0 || (op == b'=' && !equal_done) {
                                if op == b'=' {
                                    equal_done = true;
                                }
                                m.add_who(op, who, perm);
                            }
                            if perm_x != 0 {
                                m.add_who(b'X', who, perm_x);
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                match s.get(i) {
                    None => {
                        m.compress();
                        return Ok(m);
                    }
                    Some(b',') => {
                        i += 1;
                        break;
                    }
                    Some(_) => continue,
                }
            }
        }
    }

    /// `addcmd` for `=`, `+`, `-` and `X` with a zero umask.
    fn add_who(&mut self, op: u8, who: u32, arg: u32) {
        self.add(op, who, arg);
    }

    fn add(&mut self, op: u8, who: u32, arg: u32) {
        let mut op = op;
        if op == b'=' {
            self.cmds.push(Cmd {
                op: b'-',
                flags: 0,
                bits: if who != 0 { who } else { STANDARD },
            });
            op = b'+';
        }
        let bits = if who != 0 { who & arg } else { arg };
        self.cmds.push(Cmd { op, flags: 0, bits });
    }

    /// `addcmd` for the copying forms `u`, `g`, `o` (as in `g=u`).
    fn add_copy(&mut self, from: u8, who: u32, op: u8) {
        let mut flags = 0;
        let bits;
        if who != 0 {
            if who & 0o400 != 0 {
                flags |= UBITS;
            }
            if who & 0o040 != 0 {
                flags |= GBITS;
            }
            if who & 0o004 != 0 {
                flags |= OBITS;
            }
            bits = !0;
        } else {
            flags = UBITS | GBITS | OBITS;
            bits = !0;
        }
        flags |= match op {
            b'+' => SET,
            b'-' => CLEAR,
            _ => SET | CLEAR,
        };
        self.cmds.push(Cmd {
            op: from,
            flags,
            bits,
        });
    }

    fn compress(&mut self) {
        let mut out = Vec::with_capacity(self.cmds.len());
        let mut i = 0;
        while i < self.cmds.len() {
            let c = self.cmds[i];
            if !matches!(c.op, b'+' | b'-' | b'X') {
                out.push(c);
                i += 1;
                continue;
            }
            let (mut set, mut clr, mut x) = (0u32, 0u32, 0u32);
            while let Some(c) = self.cmds.get(i) {
                match c.op {
                    b'-' => {
                        clr |= c.bits;
                        set &= !c.bits;
                        x &= !c.bits;
                    }
                    b'+' => {
                        set |= c.bits;
                        clr &= !c.bits;
                        x &= !c.bits;
                    }
                    b'X' => x |= c.bits & !set,
                    _ => break,
                }
                i += 1;
            }
            for (op, bits) in [(b'-', clr), (b'+', set), (b'X', x)] {
                if bits != 0 {
                    out.push(Cmd { op, flags: 0, bits });
                }
            }
        }
        self.cmds = out;
    }

    /// The mode `st_mode` (with its file type bits) becomes: the new permission bits
    /// (setuid/setgid/sticky included).
    pub fn apply(&self, st_mode: u32) -> u32 {
        let old = st_mode & 0o7777;
        let is_dir = st_mode & 0o170000 == 0o040000;
        let mut new = old;
        for c in &self.cmds {
            match c.op {
                b'u' => {
                    let v = (new & 0o700) >> 6;
                    common(&mut new, c, v);
                }
                b'g' => {
                    let v = (new & 0o070) >> 3;
                    common(&mut new, c, v);
                }
                b'o' => {
                    let v = new & RWXO;
                    common(&mut new, c, v);
                }
                b'+' => new |= c.bits,
                b'-' => new &= !c.bits,
                b'X' if old & 0o111 != 0 || is_dir => new |= c.bits,
                _ => {}
            }
        }
        new & 0o7777
    }
}

fn common(new: &mut u32, c: &Cmd, value: u32) {
    if c.flags & CLEAR != 0 {
        let clr = if c.flags & SET != 0 { RWXO } else { value };
        if c.flags & UBITS != 0 {
            *new &= !((clr << 6) & c.bits);
        }
        if c.flags & GBITS != 0 {
            *new &= !((clr << 3) & c.bits);
        }
        if c.flags & OBITS != 0 {
            *new &= !(clr & c.bits);
        }
    }
    if c.flags & SET != 0 {
        if c.flags & UBITS != 0 {
            *new |= (value << 6) & c.bits;
        }
        if c.flags & GBITS != 0 {
            *new |= (value << 3) & c.bits;
        }
        if c.flags & OBITS != 0 {
            *new |= value & c.bits;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = 0o100000;
    const DIR: u32 = 0o040000;

    fn apply(expr: &str, mode: u32) -> u32 {
        ModeSet::parse(expr).unwrap().apply(mode)
    }

    /// Cases from dchapes-mode's tests and chmod(1), checked with GNU chmod where they agree.
    #[test]
    fn symbolic_table() {
        let cases: &[(&str, u32, u32)] = &[
            ("u+x", FILE | 0o644, 0o744),
            ("+x", FILE | 0o644, 0o755),
            ("a+x", FILE | 0o644, 0o755),
            ("go-w", FILE | 0o666, 0o644),
            ("u=rwx,go=rx", FILE | 0o600, 0o755),
            ("a=r", FILE | 0o777, 0o444),
            ("=", FILE | 0o777, 0o000),
            ("u=", FILE | 0o777, 0o077),
            ("a+X", FILE | 0o644, 0o644),
            ("a+X", FILE | 0o744, 0o755),
            ("a+X", DIR | 0o600, 0o711),
            ("g=u", FILE | 0o640, 0o660),
            ("o=g", FILE | 0o654, 0o655),
            ("go=u-w", FILE | 0o755, 0o755),
            ("u+s", FILE | 0o755, 0o4755),
            ("g+s", DIR | 0o755, 0o2755),
            ("+t", DIR | 0o777, 0o1777),
            ("o+t", DIR | 0o777, 0o777),
            ("u-x,g+w", FILE | 0o755, 0o675),
            ("a-rwx,u+r", FILE | 0o777, 0o400),
            ("u+rw,g+r", FILE, 0o640),
            ("755", FILE | 0o600, 0o755),
            ("4755", FILE | 0o600, 0o4755),
            ("0", FILE | 0o4777, 0o000),
            ("ug+rwx,o=", DIR, 0o770),
            ("a+X,u-x", FILE | 0o744, 0o655),
        ];
        for (expr, mode, want) in cases {
            assert_eq!(
                apply(expr, *mode),
                *want,
                "{expr} on {:o}: got {:o}",
                mode & 0o7777,
                apply(expr, *mode)
            );
        }
    }

    #[test]
    fn bad_modes_are_errors() {
        for bad in ["", "u", "u+q", "z+x", "8", "77777", "u+x,", "+x,,", "u!x"] {
            assert!(ModeSet::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
