//! Kubernetes quantities (`500m`, `1`, `256M`, `8Gi`, `1e3`): parsing as kube-apiserver does,
//! and the canonical form it stores them in, so that `cpu: 1.0` is stored as `"1"` and `0.5` as
//! `"500m"`.

use std::fmt;

/// Why a quantity is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantityError {
    /// Not of the quantity syntax.
    Syntax,
    /// Too large to hold.
    TooLarge,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantityError::Syntax => {
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
            QuantityError::TooLarge => "quantity too large: at most 2^63-1",
        })
    }
}

impl std::error::Error for QuantityError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^exponent`, with the format its suffix asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exponent: i32,
    format: Format,
}

const LIMIT: u128 = i64::MAX as u128;

impl Quantity {
    /// Parses a quantity as Kubernetes does.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError::Syntax);
        }
        let mut mantissa: u128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or(QuantityError::TooLarge)?;
        }
        let mut exponent = -(fraction.len() as i32);
        let format = match suffix {
            "" => Format::DecimalSi,
            "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
                exponent += match suffix {
                    "n" => -9,
                    "u" => -6,
                    "m" => -3,
                    "k" => 3,
                    "M" => 6,
                    "G" => 9,
                    "T" => 12,
                    "P" => 15,
                    _ => 18,
                };
                Format::DecimalSi
            }
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                let power = match suffix {
                    "Ki" => 1,
                    "Mi" => 2,
                    "Gi" => 3,
                    "Ti" => 4,
                    "Pi" => 5,
                    _ => 6,
                };
                mantissa = mantissa
                    .checked_mul(1024u128.pow(power))
                    .ok_or(QuantityError::TooLarge)?;
                Format::BinarySi
            }
            s if s.starts_with(['e', 'E']) => {
                let digits = &s[1..];
                let body = digits.strip_prefix(['+', '-']).unwrap_or(digits);
                if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) || body.len() > 4 {
                    return Err(QuantityError::Syntax);
                }
                exponent += digits.parse::<i32>().map_err(|_| QuantityError::Syntax)?;
                Format::DecimalExponent
            }
            _ => return Err(QuantityError::Syntax),
        };
        let mut q = Quantity {
            negative,
            mantissa,
            exponent,
            format,
        };
        q.normalize()?;
        Ok(q)
    }

    fn normalize(&mut self) -> Result<(), QuantityError> {
        if self.mantissa == 0 {
            self.exponent = 0;
            self.negative = false;
            return Ok(());
        }
        // Nothing finer than nano: round up (away from zero), as Kubernetes does.
        if self.exponent < -9 {
            let shift = (-9 - self.exponent) as u32;
            let divisor = 10u128.checked_pow(shift);
            self.mantissa = match divisor {
                Some(d) => self.mantissa.div_ceil(d),
                None => 1,
            };
            self.exponent = -9;
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.exponent += 1;
        }
        // The magnitude must fit an int64 of the smallest unit used.
        let digits = self.mantissa.ilog10() as i32 + 1;
        if digits + self.exponent > 19 {
            return Err(QuantityError::TooLarge);
        }
        Ok(())
    }

    fn integer(&self) -> Option<u128> {
        if self.exponent < 0 {
            return None;
        }
        self.mantissa
            .checked_mul(10u128.checked_pow(self.exponent as u32)?)
    }

    /// The canonical text, as Kubernetes serializes the quantity.
    pub fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        let mut format = self.format;
        if format == Format::BinarySi {
            match self.integer() {
                Some(v) if v >= 1024 => {
                    let mut value = v;
                    let mut power = 0;
                    while power < 6 && value.is_multiple_of(1024) {
                        value /= 1024;
                        power += 1;
                    }
                    if value <= LIMIT {
                        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                        return format!("{sign}{value}{suffix}");
                    }
                    format = Format::DecimalSi;
                }
                _ => format = Format::DecimalSi,
            }
        }
        let mut exponent3 = self.exponent.div_euclid(3) * 3;
        exponent3 = exponent3.clamp(-9, 18);
        let shift = (self.exponent - exponent3) as u32;
        let value = self.mantissa * 10u128.pow(shift);
        let suffix = match format {
            Format::DecimalExponent if exponent3 == 0 => String::new(),
            Format::DecimalExponent => format!("e{exponent3}"),
            _ => match exponent3 {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            }
            .to_string(),
        };
        format!("{sign}{value}{suffix}")
    }

    /// Whether the quantity is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Whether the quantity is above zero.
    pub fn is_positive(&self) -> bool {
        !self.negative && self.mantissa != 0
    }

    /// The value in thousandths (millicores for cpu), saturating.
    pub fn milli(&self) -> i128 {
        let exponent = self.exponent + 3;
        let magnitude = if exponent >= 0 {
            10u128
                .checked_pow(exponent as u32)
                .and_then(|p| self.mantissa.checked_mul(p))
                .unwrap_or(u128::MAX)
        } else {
            self.mantissa
                .div_ceil(10u128.checked_pow((-exponent) as u32).unwrap_or(u128::MAX))
        };
        let magnitude = magnitude.min(i128::MAX as u128) as i128;
        if self.negative { -magnitude } else { magnitude }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        let cases = [
            ("1.0", "1"),
            ("1", "1"),
            ("0.5", "500m"),
            ("500m", "500m"),
            ("1000", "1k"),
            ("1500m", "1500m"),
            ("256M", "256M"),
            ("8G", "8G"),
            ("8Gi", "8Gi"),
            ("1.5Gi", "1536Mi"),
            ("1024", "1024"),
            ("1024Ki", "1Mi"),
            ("16235544Ki", "16235544Ki"),
            ("296591664715", "296591664715"),
            ("0.1m", "100u"),
            ("1e3", "1e3"),
            ("1E6", "1e6"),
            ("0", "0"),
            ("0Gi", "0"),
            ("+5", "5"),
            ("-5", "-5"),
            ("0.0000000001", "1n"),
            ("100Ki", "100Ki"),
            ("0.5Ki", "512"),
        ];
        for (input, want) in cases {
            assert_eq!(
                Quantity::parse(input).map(|q| q.canonical()),
                Ok(want.into()),
                "{input}"
            );
        }
        for bad in ["", "abc", "1.2.3", "5Q", "1e", ".", "1KI", "--1", "1e99999"] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Quantity::parse("99999999999999999999"),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(Quantity::parse("1.5").unwrap().milli(), 1500);
        assert!(Quantity::parse("1n").unwrap().is_positive());
        assert!(!Quantity::parse("0Gi").unwrap().is_positive());
        assert!(!Quantity::parse("-1Gi").unwrap().is_positive());
    }
}
