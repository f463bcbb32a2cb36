//! JSON read through with checks `serde_json::Value` does not make: what is stored must read back the same
//! way everywhere (a key given twice would depend on the reader; `1e400` or a lone surrogate would not read
//! back at all), without building a value tree for `ctx` (BENCHMARKS.md).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Reads `ctx` (valid JSON syntax already) once more the way everything downstream reads it, as
/// `serde_json` values: so that what is stored can always be rendered and returned. Refused: a string
/// with a lone surrogate escape (`"\ud800"`, no character), a number beyond the range of a double
/// (`1e400`), a key twice in one object (which one counts would depend on the reader), and nesting past
/// `serde_json`'s recursion limit. No tree is built.
pub(super) fn check_ctx(text: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<CtxValue>(text).map(|_| ())
}

/// Any JSON value, read through and dropped (see [`check_ctx`]).
struct CtxValue;

impl<'de> Deserialize<'de> for CtxValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CtxVisitor)
    }
}

struct CtxVisitor;

impl<'de> Visitor<'de> for CtxVisitor {
    type Value = CtxValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_i64<E>(self, _: i64) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_u64<E>(self, _: u64) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_f64<E>(self, _: f64) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_str<E>(self, _: &str) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_unit<E>(self) -> Result<CtxValue, E> {
        Ok(CtxValue)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CtxValue, A::Error> {
        while seq.next_element::<CtxValue>()?.is_some() {}
        Ok(CtxValue)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CtxValue, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Some(key) = seen.replace(key) {
                return Err(de::Error::custom(format!(
                    "the key `{key}` appears twice in one object"
                )));
            }
            map.next_value::<CtxValue>()?;
        }
        Ok(CtxValue)
    }
}

/// A JSON object whose keys are all different (see `validate::parse_object`).
pub(super) struct UniqueObject(pub(super) Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UniqueObjectVisitor)
    }
}

struct UniqueObjectVisitor;

impl<'de> Visitor<'de> for UniqueObjectVisitor {
    type Value = UniqueObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
        let mut object = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            let value = access.next_value::<Value>()?;
            object.insert(key, value);
        }
        Ok(UniqueObject(object))
    }
}
