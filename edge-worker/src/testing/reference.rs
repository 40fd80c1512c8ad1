//! The projection through a `serde_json::Value` tree: the slow, obvious reference the
//! streaming projector must agree with. Shared by the projector's proptest and the `fields`
//! fuzz target.

use serde_json::Value;

use crate::fields::Selection;

/// `value` with only the members `selection` keeps, at every depth (arrays are looked through).
pub fn reference(value: &Value, selection: &Selection) -> Value {
    match (value, selection) {
        (_, Selection::All) => value.clone(),
        (Value::Object(map), Selection::Members(members)) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| members.select(k).map(|s| (k.clone(), reference(v, &s))))
                .collect(),
        ),
        (Value::Array(items), _) => {
            Value::Array(items.iter().map(|v| reference(v, selection)).collect())
        }
        _ => value.clone(),
    }
}
