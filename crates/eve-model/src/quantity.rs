//! Kubernetes quantities (`500m`, `1`, `256M`, `8Gi`, `1e3`): parsing, and the canonical form
//! Kubernetes stores them in, so that `cpu: 1.0` is stored as `"1"` and `0.5` as `"500m"`.

use serde_json::Value;

/// Why a quantity is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the quantity syntax.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Syntax,
    /// Too large to hold.
    #[error("quantity too large: at most 2^63-1")]
    TooLarge,
}

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

/// A Kubernetes `Quantity` field's value in thousandths (millicores for cpu), saturating;
/// `None` when it is not a quantity.
pub fn milli_of(
    quantity: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
) -> Option<i128> {
    Quantity::parse(&quantity.0).ok().map(|q| q.milli())
}

/// The canonical text of a quantity given as a JSON string or number.
pub fn canonical(value: &Value) -> Result<String, QuantityError> {
    match value {
        Value::String(s) => Ok(Quantity::parse(s)?.canonical()),
        Value::Number(n) => Ok(Quantity::parse(&n.to_string())?.canonical()),
        _ => Err(QuantityError::Syntax),
    }
}

/// A quantity that could not be normalized: where, what, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The field path, `spec.containers[0].resources.requests[cpu]`.
    pub path: String,
    /// The value as given.
    pub value: Value,
    /// Why it is not a quantity.
    pub reason: String,
}

/// Rewrites every quantity of an Application (its containers' resources, its ephemeral volumes'
/// claims) to its canonical string (numbers become strings), and reports those that are not
/// quantities or are negative. Works on the JSON as written, before the schema is checked.
pub fn normalize_application(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    if let Some(spec) = object.get_mut("spec") {
        application_spec(spec, "spec", &mut invalid);
    }
    invalid
}

/// [`normalize_application`] for the template of an ApplicationDeployment or
/// ApplicationDaemonSet (`spec.template.spec`).
pub fn normalize_template(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        application_spec(spec, "spec.template.spec", &mut invalid);
    }
    invalid
}

/// [`normalize_application`] for a Device's `status.capacity` and `status.allocatable`.
pub fn normalize_device(object: &mut Value) -> Vec<Invalid> {
    let mut invalid = Vec::new();
    for list in ["capacity", "allocatable"] {
        if let Some(map) = object.pointer_mut(&format!("/status/{list}")) {
            quantities(map, &format!("status.{list}"), &mut invalid);
        }
    }
    invalid
}

fn application_spec(spec: &mut Value, path: &str, invalid: &mut Vec<Invalid>) {
    if let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        for (i, container) in containers.iter_mut().enumerate() {
            for list in ["requests", "limits"] {
                if let Some(map) = container.pointer_mut(&format!("/resources/{list}")) {
                    quantities(
                        map,
                        &format!("{path}.containers[{i}].resources.{list}"),
                        invalid,
                    );
                }
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for (i, volume) in volumes.iter_mut().enumerate() {
            for list in ["requests", "limits"] {
                let pointer = format!("/ephemeral/volumeClaimTemplate/spec/resources/{list}");
                if let Some(map) = volume.pointer_mut(&pointer) {
                    quantities(
                        map,
                        &format!(
                            "{path}.volumes[{i}].ephemeral.volumeClaimTemplate.spec.resources.{list}"
                        ),
                        invalid,
                    );
                }
            }
        }
    }
}

fn quantities(map: &mut Value, path: &str, invalid: &mut Vec<Invalid>) {
    let Some(map) = map.as_object_mut() else {
        return;
    };
    for (name, value) in map.iter_mut() {
        let path = format!("{path}[{name}]");
        match value {
            Value::String(_) | Value::Number(_) => {}
            _ => continue, // the schema reports the wrong type
        }
        match canonical(value) {
            Ok(text) if text.starts_with('-') => invalid.push(Invalid {
                path,
                value: value.clone(),
                reason: "must be greater than or equal to 0".into(),
            }),
            Ok(text) => *value = Value::String(text),
            Err(e) => invalid.push(Invalid {
                path,
                value: value.clone(),
                reason: e.to_string(),
            }),
        }
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
    }

    #[test]
    fn normalizes_application_resources() {
        let mut app = serde_json::json!({"spec": {"containers": [
            {"name": "a", "image": "i", "resources": {"requests": {"cpu": 1.0, "memory": "256M", "storage": 0.5}}},
            {"name": "b", "image": "i", "resources": {"limits": {"cpu": "x", "memory": "-1"}}}
        ]}});
        let invalid = normalize_application(&mut app);
        assert_eq!(
            app["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "1"
        );
        assert_eq!(
            app["spec"]["containers"][0]["resources"]["requests"]["storage"],
            "500m"
        );
        let paths: Vec<_> = invalid.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.containers[1].resources.limits[cpu]",
                "spec.containers[1].resources.limits[memory]"
            ]
        );
    }
}
