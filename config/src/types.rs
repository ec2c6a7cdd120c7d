//! Validated value types: once a value has one of these types, it is known to be valid.
//!
//! Each type checks its value in `FromStr` and in `Deserialize`, so a bad value in a file is
//! reported at that value's line and column.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::error::ParseValueError;

/// A Bluetooth device address (`BD_ADDR`), written `AA:BB:CC:DD:EE:FF`.
///
/// The bytes are stored in the order they are written (most significant first), which is the
/// reverse of the little-endian order HCI uses on the wire. Parsing accepts either case;
/// `Display` writes upper case, as BlueZ does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address([u8; 6]);

impl Address {
    /// An address from its six bytes, most significant first (as written).
    pub const fn new(bytes: [u8; 6]) -> Self {
        Address(bytes)
    }

    /// The six bytes, most significant first (as written).
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl From<[u8; 6]> for Address {
    fn from(bytes: [u8; 6]) -> Self {
        Address(bytes)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

impl FromStr for Address {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ParseValueError::new(format!(
                "invalid Bluetooth address {s:?}: expected six two-digit hex numbers separated \
                 by colons (e.g. \"AA:BB:CC:DD:EE:FF\")"
            ))
        };
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Address(bytes))
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new(
            "a Bluetooth address such as \"AA:BB:CC:DD:EE:FF\"",
        ))
    }
}

/// Declares a `u8`/`u32` newtype restricted to `MIN..=MAX`.
macro_rules! bounded_integer {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty), $min:expr, $max:expr, what = $what:literal, expected = $expected:literal
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) $int);

        impl $name {
            /// The smallest valid value.
            pub const MIN: $int = $min;
            /// The largest valid value.
            pub const MAX: $int = $max;

            /// The value, or `None` when it is out of range.
            pub const fn new(value: $int) -> Option<Self> {
                #[allow(unused_comparisons, clippy::absurd_extreme_comparisons)]
                if value >= Self::MIN && value <= Self::MAX {
                    Some($name(value))
                } else {
                    None
                }
            }

            /// The value.
            pub const fn get(self) -> $int {
                self.0
            }

            fn from_i128(value: i128) -> Result<Self, ParseValueError> {
                <$int>::try_from(value)
                    .ok()
                    .and_then(Self::new)
                    .ok_or_else(|| {
                        ParseValueError::new(format!(
                            concat!("invalid ", $what, " {}: expected ", $expected),
                            value
                        ))
                    })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().parse::<i128>() {
                    Ok(value) => Self::from_i128(value),
                    Err(_) => Err(ParseValueError::new(format!(
                        concat!("invalid ", $what, " {:?}: expected ", $expected),
                        s
                    ))),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expected)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_i128(i128::from(v)).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        $name::from_i128(i128::from(v)).map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

bounded_integer! {
    /// A volume on the Hands-Free Profile scale, 0 (silent) to 15 (loudest): the scale of
    /// `AT+VGS`/`AT+VGM`, so it goes to the phone unchanged.
    HfpVolume(u8), 0, 15, what = "volume", expected = "an integer from 0 to 15"
}

bounded_integer! {
    /// A percentage, 0 to 100, for volumes that never leave the head unit.
    Percent(u8), 0, 100, what = "percentage", expected = "an integer from 0 to 100"
}

bounded_integer! {
    /// A line offset on a GPIO character device (`/dev/gpiochipN`), as `gpioinfo` lists them.
    GpioLine(u32), 0, u32::MAX, what = "GPIO line", expected = "a line number (0 or more)"
}

bounded_integer! {
    /// A `SCHED_FIFO` priority for the call audio thread, 1 (lowest) to 99 (highest).
    RealtimePriority(u8), 1, 99, what = "realtime priority", expected = "an integer from 1 to 99"
}

/// A Bluetooth Class of Device: the 24-bit value a device advertises in inquiry responses so
/// that phones show the right icon and offer the right services.
///
/// Layout (Bluetooth Assigned Numbers, "Class of Device"): bits 23–13 major service classes,
/// bits 12–8 major device class, bits 7–2 minor device class, bits 1–0 format type (always 0).
/// Written in the file as an integer (`0x240408`) or a string (`"0x240408"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceClass(u32);

impl DeviceClass {
    /// `0x240408`, codriver's default: service classes Audio (bit 21) and Rendering (bit 18),
    /// major device class Audio/Video (`0x04`), minor device class Hands-free Device (`0x02`).
    /// Phones show it as a car kit / hands-free device.
    pub const HANDS_FREE: DeviceClass = DeviceClass(0x0024_0408);

    /// The class, or `None` unless it fits in 24 bits with format type bits 1–0 clear.
    pub const fn new(value: u32) -> Option<Self> {
        if value >> 24 == 0 && value & 0b11 == 0 {
            Some(DeviceClass(value))
        } else {
            None
        }
    }

    /// The 24-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The major service class bits (23–13), shifted down.
    pub const fn service_classes(self) -> u32 {
        self.0 >> 13
    }

    /// The major device class (bits 12–8); `0x04` is Audio/Video.
    pub const fn major(self) -> u8 {
        ((self.0 >> 8) & 0x1f) as u8
    }

    /// The minor device class (bits 7–2); under Audio/Video `0x02` is Hands-free Device.
    pub const fn minor(self) -> u8 {
        ((self.0 >> 2) & 0x3f) as u8
    }

    fn from_i128(value: i128, written: &dyn fmt::Debug) -> Result<Self, ParseValueError> {
        u32::try_from(value)
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| Self::invalid(written))
    }

    fn invalid(written: &dyn fmt::Debug) -> ParseValueError {
        ParseValueError::new(format!(
            "invalid class of device {written:?}: expected a 24-bit number whose two lowest \
             bits are 0, e.g. 0x240408"
        ))
    }
}

impl Default for DeviceClass {
    fn default() -> Self {
        DeviceClass::HANDS_FREE
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#08x}", self.0)
    }
}

impl FromStr for DeviceClass {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().replace('_', "");
        let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            Some(hex) => i128::from_str_radix(hex, 16),
            None => t.parse::<i128>(),
        };
        match parsed {
            Ok(value) => DeviceClass::from_i128(value, &s),
            Err(_) => Err(DeviceClass::invalid(&s)),
        }
    }
}

impl<'de> Deserialize<'de> for DeviceClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DeviceClass;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a class of device such as 0x240408")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeviceClass, E> {
                DeviceClass::from_i128(i128::from(v), &format_args!("{v:#x}")).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeviceClass, E> {
                DeviceClass::from_i128(i128::from(v), &format_args!("{v:#x}")).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceClass, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A number of bytes, written as an integer or as a string with a unit: `B`, `KB`/`kB`, `MB`,
/// `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024), e.g. `"200MiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

const SIZE_UNITS: [(&str, u64); 10] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("kB", 1_000),
    ("B", 1),
];

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    fn invalid(written: &str) -> ParseValueError {
        ParseValueError::new(format!(
            "invalid size {written:?}: expected a number of bytes or a number followed by B, KB, \
             MB, GB, TB, KiB, MiB, GiB or TiB (e.g. \"200MiB\")"
        ))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly, e.g. `200MiB`, `1500B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = SIZE_UNITS
            .iter()
            .find(|(_, factor)| self.0 != 0 && self.0.is_multiple_of(*factor));
        match unit {
            Some((name, factor)) => write!(f, "{}{name}", self.0 / factor),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl FromStr for ByteSize {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, unit) = t.split_at(digits_end);
        let number: u64 = number.parse().map_err(|_| ByteSize::invalid(s))?;
        let factor = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit.trim_start())
                .map(|(_, factor)| *factor)
                .ok_or_else(|| ByteSize::invalid(s))?
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| ParseValueError::new(format!("invalid size {s:?}: too large")))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"200MiB\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(ByteSize::invalid(&v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A fraction from 0.0 to 1.0 inclusive (never NaN).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Fraction(pub(crate) f64);

impl Fraction {
    /// The fraction, or `None` unless `0.0 <= value <= 1.0`.
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Fraction(value))
    }

    /// The value.
    pub const fn get(self) -> f64 {
        self.0
    }

    fn checked(value: f64) -> Result<Self, ParseValueError> {
        Fraction::new(value).ok_or_else(|| {
            ParseValueError::new(format!(
                "invalid fraction {value}: expected a number from 0.0 to 1.0"
            ))
        })
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` keeps the `.0` of whole numbers, so the value reads back as a float.
        write!(f, "{:?}", self.0)
    }
}

impl FromStr for Fraction {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<f64>() {
            Ok(value) => Fraction::checked(value),
            Err(_) => Err(ParseValueError::new(format!(
                "invalid fraction {s:?}: expected a number from 0.0 to 1.0"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Fraction;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number from 0.0 to 1.0")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Fraction, E> {
                Fraction::checked(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Fraction, E> {
                // Exact for every integer that could pass the range check.
                #[allow(clippy::cast_precision_loss)]
                Fraction::checked(v as f64).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Fraction, E> {
                #[allow(clippy::cast_precision_loss)]
                Fraction::checked(v as f64).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A legacy (pre-Bluetooth 2.1) PIN code: 4 to 16 decimal digits, kept as a string so that
/// leading zeros survive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyPin(String);

impl LegacyPin {
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LegacyPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LegacyPin {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if (4..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(LegacyPin(s.to_owned()))
        } else {
            Err(ParseValueError::new(format!(
                "invalid PIN {s:?}: expected 4 to 16 digits"
            )))
        }
    }
}

impl<'de> Deserialize<'de> for LegacyPin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new(
            "a quoted string of 4 to 16 digits, e.g. \"0000\"",
        ))
    }
}

/// The log filter: a level (`trace`, `debug`, `info`, `warn`, `error`, `off`) or a `tracing`
/// `Targets` directive list (`level` or `target=level`, comma-separated) such as `"codriver=debug,zbus=warn"`.
///
/// A plain level is checked here and stored in lower case; a directive (anything containing
/// `=`) is kept as written and checked by `EnvFilter` when logging starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogFilter(String);

impl LogFilter {
    /// The levels accepted on their own.
    pub const LEVELS: [&'static str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

    /// The filter as written (a level in lower case).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter("info".to_owned())
    }
}

impl fmt::Display for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LogFilter {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        // A directive is `level` or `target=level`, comma-separated: what tracing's
        // `Targets` filter takes (no regular expressions, no span fields).
        let is_level = |l: &str| LogFilter::LEVELS.contains(&l) || l == "off";
        let directive_ok = |d: &str| match d.split_once('=') {
            Some((target, level)) => {
                !target.is_empty()
                    && target
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c))
                    && is_level(level)
            }
            None => is_level(d),
        };
        if !lower.is_empty() && lower.split(',').all(directive_ok) {
            Ok(LogFilter(lower))
        } else {
            Err(ParseValueError::new(format!(
                "invalid log level {s:?}: expected one of {}, or a filter directive such as \
                 \"codriver=debug,zbus=warn\"",
                quoted_list(&LogFilter::LEVELS)
            )))
        }
    }
}

impl<'de> Deserialize<'de> for LogFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new(
            "a log level such as \"info\" or a filter such as \"codriver=debug\"",
        ))
    }
}

/// The name of a button: 1 to 32 ASCII letters, digits, `-` or `_` (e.g. `phone`, `vol-up`).
///
/// Buttons are GPIO buttons (`[[controls.buttons]]`) or names that evdev keys map to
/// (`[controls.evdev.keys]`); bindings refer to them by this name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ButtonName(pub(crate) String);

impl ButtonName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ButtonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ButtonName {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(ButtonName(s.to_owned()))
        } else {
            Err(ParseValueError::new(format!(
                "invalid button name {s:?}: expected 1 to 32 letters, digits, \"-\" or \"_\" \
                 (e.g. \"phone\")"
            )))
        }
    }
}

impl<'de> Deserialize<'de> for ButtonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new("a button name such as \"phone\""))
    }
}

/// A Linux input key code name as in `linux/input-event-codes.h`: `KEY_…` or `BTN_…`
/// (e.g. `KEY_PHONE`, `KEY_VOLUMEUP`, `BTN_0`). `evtest` prints the names a device sends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvdevKey(pub(crate) String);

impl EvdevKey {
    /// The name, e.g. `KEY_PHONE`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EvdevKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for EvdevKey {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("KEY_").or_else(|| s.strip_prefix("BTN_"));
        let valid = rest.is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        if valid {
            Ok(EvdevKey(s.to_owned()))
        } else {
            Err(ParseValueError::new(format!(
                "invalid evdev key {s:?}: expected a Linux key name such as \"KEY_PHONE\" or \
                 \"BTN_0\""
            )))
        }
    }
}

impl<'de> Deserialize<'de> for EvdevKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new("a key name such as \"KEY_PHONE\""))
    }
}

/// An entry of the pairing allowlist: a device address, or a device name matched exactly.
///
/// A string of the form `XX:XX:XX:XX:XX:XX` is always taken as an address (and must be a valid
/// one); anything else non-empty is a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AllowlistEntry {
    /// Accept the device with this address.
    Address(Address),
    /// Accept a device that presents exactly this name (easy to spoof: prefer addresses).
    Name(String),
}

impl fmt::Display for AllowlistEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowlistEntry::Address(address) => address.fmt(f),
            AllowlistEntry::Name(name) => f.write_str(name),
        }
    }
}

impl FromStr for AllowlistEntry {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let looks_like_address = s.len() == 17 && s.matches(':').count() == 5;
        if looks_like_address {
            s.parse().map(AllowlistEntry::Address)
        } else if s.trim().is_empty() {
            Err(ParseValueError::new(
                "invalid allowlist entry \"\": expected a Bluetooth address or a device name",
            ))
        } else {
            Ok(AllowlistEntry::Name(s.to_owned()))
        }
    }
}

impl<'de> Deserialize<'de> for AllowlistEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(FromStrVisitor::new("a Bluetooth address or a device name"))
    }
}

/// Parses a duration: a whole number followed by a unit, `ms`, `s`, `min`, `h` or `d`
/// (e.g. `"150ms"`, `"90s"`, `"5min"`, `"1h"`, `"30d"`).
///
/// # Errors
///
/// Anything else, including negative numbers, fractions, a missing unit and durations too long
/// to represent.
pub fn parse_duration(s: &str) -> Result<Duration, ParseValueError> {
    const UNITS: [(&str, u64); 5] = [
        ("ms", 1),
        ("s", 1_000),
        ("min", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
    ];
    let invalid = || {
        ParseValueError::new(format!(
            "invalid duration {s:?}: expected a number followed by ms, s, min, h or d \
             (e.g. \"90s\")"
        ))
    };
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    if number.is_empty() {
        return Err(invalid());
    }
    let factor = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, factor)| *factor)
        .ok_or_else(invalid)?;
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .map(Duration::from_millis)
        .ok_or_else(|| ParseValueError::new(format!("invalid duration {s:?}: too long")))
}

/// Formats a duration the way [`parse_duration`] reads it, in the largest unit that divides
/// it exactly (`"2s"`, `"5min"`, `"150ms"`). Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    let units: [(&str, u128); 4] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1_000),
    ];
    if ms == 0 {
        return "0s".to_owned();
    }
    units
        .iter()
        .find(|(_, factor)| ms.is_multiple_of(*factor))
        .map_or_else(
            || format!("{ms}ms"),
            |(name, factor)| format!("{}{name}", ms / factor),
        )
}

/// `"a", "b", "c"`: how the valid choices are listed in error messages.
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Deserializes a string through `T::from_str`, so its message becomes the error's.
pub(crate) struct FromStrVisitor<T> {
    expecting: Cow<'static, str>,
    value: PhantomData<T>,
}

impl<T> FromStrVisitor<T> {
    pub(crate) fn new(expecting: impl Into<Cow<'static, str>>) -> Self {
        FromStrVisitor {
            expecting: expecting.into(),
            value: PhantomData,
        }
    }
}

impl<T: FromStr<Err = ParseValueError>> Visitor<'_> for FromStrVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips_and_rejects_garbage() {
        let a: Address = "aa:bb:cc:0d:ee:ff".parse().unwrap();
        assert_eq!(a.octets(), [0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]);
        assert_eq!(a.to_string(), "AA:BB:CC:0D:EE:FF");
        for bad in [
            "",
            "AA:BB:CC:DD:EE",
            "AA:BB:CC:DD:EE:FF:00",
            "AA:BB:CC:DD:EE:F",
            "AA:BB:CC:DD:EE:FFF",
            "AA-BB-CC-DD-EE-FF",
            "+A:BB:CC:DD:EE:FF",
            "GG:BB:CC:DD:EE:FF",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in [
            "", "soon", "-5s", "5", "s", "1.5s", "5 s", " 5s", "5m", "5S", "5sec", "5s ",
        ] {
            assert_eq!(
                parse_duration(bad).unwrap_err().to_string(),
                format!(
                    "invalid duration {bad:?}: expected a number followed by ms, s, min, h or d \
                     (e.g. \"90s\")"
                )
            );
        }
        assert_eq!(
            parse_duration("99999999999999999999d")
                .unwrap_err()
                .to_string(),
            "invalid duration \"99999999999999999999d\": too long"
        );
    }

    #[test]
    fn durations_format_in_the_largest_exact_unit() {
        for (text, ms) in [
            ("0s", 0),
            ("150ms", 150),
            ("1500ms", 1500),
            ("2s", 2000),
            ("90s", 90_000),
            ("5min", 300_000),
            ("1h", 3_600_000),
            ("30d", 2_592_000_000),
        ] {
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)));
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("200MiB".parse(), Ok(ByteSize::new(200 << 20)));
        assert_eq!("1kB".parse(), Ok(ByteSize::new(1000)));
        assert_eq!("1234".parse(), Ok(ByteSize::new(1234)));
        assert_eq!("5GB".parse(), Ok(ByteSize::new(5_000_000_000)));
        assert!("5 parsecs".parse::<ByteSize>().is_err());
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("-1MiB".parse::<ByteSize>().is_err());
        assert!("99999999999TiB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize::new(200 << 20).to_string(), "200MiB");
        assert_eq!(ByteSize::new(1500).to_string(), "1500B");
        assert_eq!(ByteSize::new(3000).to_string(), "3KB");
        assert_eq!(ByteSize::new(0).to_string(), "0B");
    }

    #[test]
    fn device_class_checks_format_bits_and_width() {
        assert_eq!(DeviceClass::default().get(), 0x24_0408);
        assert_eq!(DeviceClass::HANDS_FREE.major(), 0x04);
        assert_eq!(DeviceClass::HANDS_FREE.minor(), 0x02);
        assert_eq!(
            DeviceClass::HANDS_FREE.service_classes(),
            0b100_1000_0000 >> 2
        );
        assert_eq!("0x240408".parse(), Ok(DeviceClass::HANDS_FREE));
        assert_eq!("2360328".parse(), Ok(DeviceClass::HANDS_FREE));
        assert!("0x1000000".parse::<DeviceClass>().is_err());
        assert!("0x240409".parse::<DeviceClass>().is_err());
        assert_eq!(DeviceClass::HANDS_FREE.to_string(), "0x240408");
    }

    #[test]
    fn bounded_integers() {
        assert_eq!(HfpVolume::new(15).map(HfpVolume::get), Some(15));
        assert_eq!(HfpVolume::new(16), None);
        assert_eq!(
            "16".parse::<HfpVolume>().unwrap_err().to_string(),
            "invalid volume 16: expected an integer from 0 to 15"
        );
        assert_eq!(RealtimePriority::new(0), None);
        assert_eq!(
            "-1".parse::<GpioLine>().unwrap_err().to_string(),
            "invalid GPIO line -1: expected a line number (0 or more)"
        );
        assert_eq!(Percent::new(100).map(Percent::get), Some(100));
    }

    #[test]
    fn small_string_types() {
        assert!("0000".parse::<LegacyPin>().is_ok());
        assert!("123".parse::<LegacyPin>().is_err());
        assert!("12345678901234567".parse::<LegacyPin>().is_err());
        assert!("12a4".parse::<LegacyPin>().is_err());
        assert_eq!("INFO".parse::<LogFilter>().unwrap().as_str(), "info");
        assert!("codriver=debug,zbus=warn".parse::<LogFilter>().is_ok());
        assert!("codriver_daemon=trace,info".parse::<LogFilter>().is_ok());
        assert!("codriver=loud".parse::<LogFilter>().is_err());
        assert!("a b=info".parse::<LogFilter>().is_err());
        assert!("x[{y}]=info".parse::<LogFilter>().is_err());
        assert!("verbose".parse::<LogFilter>().is_err());
        assert!("vol-up_2".parse::<ButtonName>().is_ok());
        assert!("my button".parse::<ButtonName>().is_err());
        assert!("".parse::<ButtonName>().is_err());
        assert!("KEY_PHONE".parse::<EvdevKey>().is_ok());
        assert!("BTN_0".parse::<EvdevKey>().is_ok());
        assert!("KEY_".parse::<EvdevKey>().is_err());
        assert!("key_phone".parse::<EvdevKey>().is_err());
        assert_eq!(
            "My Phone".parse::<AllowlistEntry>(),
            Ok(AllowlistEntry::Name("My Phone".to_owned()))
        );
        assert!(matches!(
            "00:11:22:33:44:55".parse::<AllowlistEntry>(),
            Ok(AllowlistEntry::Address(_))
        ));
        assert!("00:11:22:33:44:GG".parse::<AllowlistEntry>().is_err());
        assert_eq!(Fraction::new(0.2).map(Fraction::get), Some(0.2));
        assert_eq!(Fraction::new(f64::NAN), None);
        assert_eq!(
            Fraction::new(1.0).map(|f| f.to_string()).as_deref(),
            Some("1.0")
        );
    }
}
