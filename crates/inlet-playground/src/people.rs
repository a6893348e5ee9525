//! Realistic user fields, each a pure function of `(seed, index)` or `(seed, index, revision)`.
//!
//! Word lists come from the `fake` crate's English locale; the formatting is done here, by
//! hand and without allocation, because the playground renders hundreds of thousands of
//! records a second and a general template engine costs several times that budget.

use std::fmt::Write as _;

use fake::locales::{Data, EN};

use crate::rng::{Domain, Draws};

/// Which user, and which revision of it: revision 0 is the user as first generated; every
/// update made by live changes bumps it, and re-draws the fields that can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Who {
    pub seed: u64,
    pub index: u32,
    pub revision: u32,
}

/// The textual fields of a user record, written into caller-provided buffers.
pub(crate) struct Person {
    identity: Draws,
    email: Draws,
    revision: Draws,
}

impl Person {
    pub(crate) fn new(who: Who) -> Self {
        let index = u64::from(who.index);
        Person {
            identity: Draws::new(who.seed, Domain::Person, index),
            email: Draws::new(who.seed, Domain::Person, index | 1 << 63),
            revision: Draws::new(who.seed, Domain::Revision, index << 24 | u64::from(who.revision & 0xff_ffff)),
        }
    }

    /// A version-4 UUID, stable for the user's whole life.
    pub(crate) fn uuid(&mut self, out: &mut String) {
        let hi = self.identity.next_u64();
        let lo = self.identity.next_u64();
        let hi = (hi & !0xf000) | 0x4000; // version 4
        let lo = (lo & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
        // Written digit by digit: through `write!`, the padded hex fields cost the server more
        // than the rest of the record's text.
        for (value, digits) in [(hi >> 32, 8), ((hi >> 16) & 0xffff, 4), (hi & 0xffff, 4), (lo >> 48, 4)] {
            push_hex(out, value, digits);
            out.push('-');
        }
        push_hex(out, lo & 0xffff_ffff_ffff, 12);
    }

    /// `First Last`, now and then with a title or a suffix, as Faker's `name()`.
    pub(crate) fn name(&mut self, out: &mut String) {
        let d = &mut self.identity;
        let style = d.below(100);
        if style < 4 {
            out.push_str(d.pick(EN::NAME_TITLE));
            out.push(' ');
        }
        out.push_str(d.pick(EN::NAME_FIRST_NAME));
        out.push(' ');
        out.push_str(d.pick(EN::NAME_LAST_NAME));
        if (4..8).contains(&style) {
            out.push(' ');
            out.push_str(d.pick(EN::NAME_SUFFIX));
        }
    }

    /// A user name at one of the reserved example domains, as Faker's `email()`: like
    /// Faker, it is drawn independently of the person's name.
    pub(crate) fn email(&mut self, out: &mut String) {
        let d = &mut self.email;
        let first = d.pick(EN::NAME_FIRST_NAME);
        let last = d.pick(EN::NAME_LAST_NAME);
        match d.below(5) {
            0 => push_lower(out, &[first, last]),
            1 => push_lower(out, &[&first[..1], last]),
            2 => push_lower(out, &[last, &first[..1]]),
            3 => push_lower(out, &[first, ".", last]),
            _ => {
                push_lower(out, &[first]);
                let _ = write!(out, "{:02}", d.below(100));
            }
        }
        out.push_str(d.pick(&["@example.com", "@example.org", "@example.net"]));
    }

    /// A US street address over two lines, as Faker's `address()`; about one in twenty is
    /// a military address.
    pub(crate) fn address(&mut self, out: &mut String) {
        let d = &mut self.revision;
        if d.below(20) == 0 {
            match d.below(3) {
                0 => {
                    let _ = write!(
                        out,
                        "{} {}\nFPO {} {:05}",
                        d.pick(&["USNS", "USNV", "USS", "USCGC"]),
                        d.pick(EN::NAME_LAST_NAME),
                        d.pick(&["AA", "AE", "AP"]),
                        d.below(100_000)
                    );
                }
                1 => {
                    let _ = write!(
                        out,
                        "PSC {:04}, Box {:04}\nAPO {} {:05}",
                        d.below(10_000),
                        d.below(10_000),
                        d.pick(&["AA", "AE", "AP"]),
                        d.below(100_000)
                    );
                }
                _ => {
                    let _ = write!(
                        out,
                        "Unit {:04} Box {:04}\nDPO {} {:05}",
                        d.below(10_000),
                        d.below(10_000),
                        d.pick(&["AA", "AE", "AP"]),
                        d.below(100_000)
                    );
                }
            }
            return;
        }
        let digits = d.between(3, 5) as u32;
        let _ = write!(out, "{} ", d.between(10u64.pow(digits - 1), 10u64.pow(digits) - 1));
        out.push_str(pick_first_or_last(d));
        out.push(' ');
        out.push_str(d.pick(EN::ADDRESS_STREET_SUFFIX));
        match d.below(4) {
            0 => {
                let _ = write!(out, " Apt. {:03}", d.below(1000));
            }
            1 => {
                let _ = write!(out, " Suite {:03}", d.below(1000));
            }
            _ => {}
        }
        out.push('\n');
        if d.below(3) == 0 {
            out.push_str(d.pick(EN::ADDRESS_CITY_PREFIX));
            out.push(' ');
        }
        out.push_str(pick_first_or_last(d));
        out.push_str(d.pick(EN::ADDRESS_CITY_SUFFIX));
        let _ = write!(out, ", {} {:05}", d.pick(EN::ADDRESS_STATE_ABBR), d.below(100_000));
    }

    /// `Last Inc`, `Last-Last` or `Last, Last and Last`, as Faker's `company()`.
    pub(crate) fn company(&mut self, out: &mut String) {
        let d = &mut self.revision;
        match d.below(3) {
            0 => {
                out.push_str(d.pick(EN::NAME_LAST_NAME));
                out.push(' ');
                out.push_str(d.pick(&["Inc", "LLC", "Ltd", "PLC", "Group", "and Sons"]));
            }
            1 => {
                out.push_str(d.pick(EN::NAME_LAST_NAME));
                out.push('-');
                out.push_str(d.pick(EN::NAME_LAST_NAME));
            }
            _ => {
                let _ = write!(
                    out,
                    "{}, {} and {}",
                    d.pick(EN::NAME_LAST_NAME),
                    d.pick(EN::NAME_LAST_NAME),
                    d.pick(EN::NAME_LAST_NAME)
                );
            }
        }
    }

    /// A job title such as `Senior Marketing Analyst`.
    pub(crate) fn job(&mut self, out: &mut String) {
        let d = &mut self.revision;
        if d.below(3) == 0 {
            out.push_str(d.pick(EN::JOB_SENIORITY));
            out.push(' ');
        }
        out.push_str(d.pick(EN::JOB_FIELD));
        out.push(' ');
        out.push_str(d.pick(EN::JOB_POSITION));
    }
}

/// Streets and towns are named after people, by first or by last name.
fn pick_first_or_last(d: &mut Draws) -> &'static str {
    let list = if d.below(2) == 0 { EN::NAME_FIRST_NAME } else { EN::NAME_LAST_NAME };
    d.pick(list)
}

/// Appends the low `digits` hex digits of `value`, in lower case, zero-padded.
fn push_hex(out: &mut String, value: u64, digits: u32) {
    for digit in (0..digits).rev() {
        out.push(char::from(b"0123456789abcdef"[((value >> (digit * 4)) & 0xf) as usize]));
    }
}

fn push_lower(out: &mut String, parts: &[&str]) {
    for part in parts {
        out.extend(part.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(who: Who) -> [String; 6] {
        let mut p = Person::new(who);
        let mut f: [String; 6] = Default::default();
        p.uuid(&mut f[0]);
        p.name(&mut f[1]);
        p.email(&mut f[2]);
        p.address(&mut f[3]);
        p.company(&mut f[4]);
        p.job(&mut f[5]);
        f
    }

    #[test]
    fn same_user_same_fields_and_different_users_differ() {
        let who = Who { seed: 42, index: 17, revision: 0 };
        assert_eq!(fields(who), fields(who));
        assert_ne!(fields(who)[0], fields(Who { index: 18, ..who })[0]);
        assert_ne!(fields(who)[0], fields(Who { seed: 43, ..who })[0]);
    }

    #[test]
    fn uuids_are_the_formatted_draws() {
        for index in 0..2000 {
            let mut draws = Person::new(Who { seed: 3, index, revision: 0 }).identity;
            let hi = (draws.next_u64() & !0xf000) | 0x4000;
            let lo = (draws.next_u64() & !(0b11 << 62)) | (0b10 << 62);
            let expected = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                hi >> 32,
                (hi >> 16) & 0xffff,
                hi & 0xffff,
                lo >> 48,
                lo & 0xffff_ffff_ffff
            );
            assert_eq!(fields(Who { seed: 3, index, revision: 0 })[0], expected);
        }
    }

    #[test]
    fn a_revision_changes_address_company_job_but_not_identity() {
        let v0 = fields(Who { seed: 1, index: 5, revision: 0 });
        let v1 = fields(Who { seed: 1, index: 5, revision: 1 });
        assert_eq!(v0[..3], v1[..3]);
        assert_ne!(v0[3..], v1[3..]);
    }

    #[test]
    fn fields_look_like_the_reference() {
        for index in 0..2000 {
            let [uuid, name, email, address, company, job] = fields(Who { seed: 9, index, revision: 0 });
            assert_eq!(uuid.len(), 36);
            assert_eq!(&uuid[14..15], "4");
            assert!(name.contains(' '));
            let (user, domain) = email.split_once('@').expect("an email has an @");
            assert!(!user.is_empty() && domain.starts_with("example."));
            assert_eq!(address.matches('\n').count(), 1, "{address:?}");
            assert!(!company.is_empty() && !job.is_empty());
            assert!([&name, &email, &address, &company, &job].iter().all(|s| s.is_ascii()));
        }
    }
}
