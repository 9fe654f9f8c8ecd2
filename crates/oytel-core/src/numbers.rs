//! Numbers and secrets: ICCIDs, mobile numbers, activation codes, ids and tokens.
//!
//! Everything random here comes from `rand::thread_rng()`, a cryptographically secure
//! generator (ChaCha, seeded and reseeded from the operating system).

use rand::{distributions::Alphanumeric, Rng};

/// The fixed head of our ICCIDs: `89` (telecom), `44` (UK country code), `70` (issuer).
pub const ICCID_PREFIX: &str = "894470";
/// ICCID length including the check digit (one length per issuer, E.118).
pub const ICCID_LEN: usize = 19;

/// `bytes` as lowercase hexadecimal (digests, ETags).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The Luhn check digit for a string of ASCII digits.
pub fn luhn_check_digit(digits: &str) -> u8 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    ((10 - (sum % 10)) % 10) as u8
}

/// Whether `iccid` is 19 digits, starts with `89`, and ends in a correct Luhn digit.
pub fn is_valid_iccid(iccid: &str) -> bool {
    iccid.len() == ICCID_LEN
        && iccid.starts_with("89")
        && iccid.bytes().all(|b| b.is_ascii_digit())
        && luhn_check_digit(&iccid[..ICCID_LEN - 1]) == iccid.as_bytes()[ICCID_LEN - 1] - b'0'
}

/// A random ICCID of ours: `894470`, twelve random digits, a Luhn check digit.
pub fn generate_iccid() -> String {
    let mut rng = rand::thread_rng();
    let mut body = String::with_capacity(ICCID_LEN);
    body.push_str(ICCID_PREFIX);
    while body.len() < ICCID_LEN - 1 {
        body.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    let check = luhn_check_digit(&body);
    body.push(char::from(b'0' + check));
    body
}

/// A random UK mobile number in E.164: `+447`, then a digit of a mobile range (071–075,
/// 077–079; not 070 personal or 076 pager numbers), then eight digits.
pub fn generate_msisdn() -> String {
    const SECOND: [u8; 8] = [b'1', b'2', b'3', b'4', b'5', b'7', b'8', b'9'];
    let mut rng = rand::thread_rng();
    let mut number = String::from("+447");
    number.push(char::from(SECOND[rng.gen_range(0..SECOND.len())]));
    for _ in 0..8 {
        number.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
    number
}

/// Whether `number` is a UK mobile number of the form we issue.
pub fn is_uk_mobile(number: &str) -> bool {
    number.len() == 13
        && number.starts_with("+447")
        && number[1..].bytes().all(|b| b.is_ascii_digit())
}

/// A random SGP.22 matching id: four groups of five uppercase letters and digits
/// (about 103 bits), e.g. `Q3TZK-8H2LM-...`.
pub fn generate_matching_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
                .collect()
        })
        .collect();
    groups.join("-")
}

/// The activation code (GSMA SGP.22 §4.1): `LPA:1$<SM-DP+ address>$<matching id>`.
pub fn activation_code(smdp_address: &str, matching_id: &str) -> String {
    format!("LPA:1${smdp_address}${matching_id}")
}

/// `len` random letters and digits (about 5.95 bits each).
pub fn random_base62(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new public id: `<prefix>_` and 20 random letters and digits (about 119 bits),
/// e.g. `esim_4f9Kx…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_base62(20))
}

/// An unguessable token for a public URL (about 190 bits).
pub fn new_url_token() -> String {
    random_base62(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn luhn_matches_known_values() {
        // The classic example from the Luhn algorithm's description.
        assert_eq!(luhn_check_digit("7992739871"), 3);
        // The ICCID example of Wikipedia's ICCID article: 89014103211118510720.
        assert_eq!(luhn_check_digit("8901410321111851072"), 0);
    }

    #[test]
    fn generated_iccids_are_valid_e118_numbers() {
        for _ in 0..1000 {
            let iccid = generate_iccid();
            assert!(iccid.starts_with("8944"), "{iccid}");
            assert!(is_valid_iccid(&iccid), "{iccid}");
        }
        let mut broken = generate_iccid().into_bytes();
        broken[10] = if broken[10] == b'9' {
            b'0'
        } else {
            broken[10] + 1
        };
        assert!(!is_valid_iccid(std::str::from_utf8(&broken).unwrap()));
    }

    #[test]
    fn generated_numbers_and_codes_have_their_forms() {
        for _ in 0..1000 {
            let msisdn = generate_msisdn();
            assert!(is_uk_mobile(&msisdn), "{msisdn}");
            assert!(!msisdn.starts_with("+4470") && !msisdn.starts_with("+4476"));
        }
        let mid = generate_matching_id();
        assert_eq!(mid.len(), 23);
        assert_eq!(mid.matches('-').count(), 3);
        assert_eq!(
            activation_code("smdp.oytel.example", &mid),
            format!("LPA:1$smdp.oytel.example${mid}")
        );
        assert!(new_id("esim").starts_with("esim_"));
        assert_eq!(new_id("esim").len(), 25);
        assert_ne!(new_url_token(), new_url_token());
    }
}
