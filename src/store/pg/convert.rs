//! Rows for `mailout store migrate`: how a table is paged through, and values converted
//! between [`Value`] and PostgreSQL's column types.

use postgres::Row;
use postgres::types::{ToSql, Type};

use crate::store::Value;

use super::bridge::{Step, bad};

/// How [`export_rows`](crate::store::RowCopy::export_rows) pages through `table` in
/// primary-key order: the key, the condition for rows after a page's last key (`$1`, `$2`
/// its values), and how many rows a page holds. Paging keeps the database thread free while the caller handles a page (the
/// caller may call the store again from its callback).
pub(super) fn paging(table: &str) -> (&'static str, &'static str, i64) {
    match table {
        "editions" => ("number", "number > $1::bigint", 1000),
        "secrets" => ("name", "name > $1::text", 1000),
        "suppressions" => ("email", "email > $1::text", 1000),
        "journal" => ("job, seq", "(job, seq) > ($1::bigint, $2::bigint)", 1000),
        "left_out" => ("job, email", "(job, email) > ($1::bigint, $2::text)", 1000),
        "erased" => ("hash", "hash > $1::text", 1000),
        "list_optouts" => ("email, list", "(email, list) > ($1::text, $2::text)", 1000),
        "seed_copies" => (
            "job, address",
            "(job, address) > ($1::bigint, $2::text)",
            1000,
        ),
        "message_sections" | "message_attachments" => (
            "message, position",
            "(message, position) > ($1::bigint, $2::bigint)",
            1000,
        ),
        "attachments" => ("hash", "hash > $1::text", 32),
        "imap_state" => ("mailbox", "mailbox > $1::text", 1000),
        "approvals" => (
            "source, name",
            "(source, name) > ($1::text, $2::text)",
            1000,
        ),
        "messages" => ("id", "id > $1::bigint", 64),
        _ => ("id", "id > $1::bigint", 1000),
    }
}

/// A page's last key, as parameters for the next page.
pub(super) fn key_params(key: &[Value]) -> Step<Vec<Box<dyn ToSql + Sync + Send>>> {
    key.iter()
        .map(|v| -> Step<Box<dyn ToSql + Sync + Send>> {
            match v {
                Value::Integer(n) => Ok(Box::new(*n)),
                Value::Text(t) => Ok(Box::new(t.clone())),
                other => Err(bad(format!(
                    "a key that is neither a number nor text: {other}"
                ))),
            }
        })
        .collect()
}

/// A row's column as a [`Value`].
pub(super) fn value_of(row: &Row, i: usize) -> Step<Value> {
    let ty = row
        .columns()
        .get(i)
        .map(|c| c.type_().clone())
        .ok_or_else(|| bad(format!("no column {i}")))?;
    Ok(match ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(i64::from)
            .map(Value::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(i64::from)
            .map(Value::Integer),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Value::Integer),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|b| Value::Integer(i64::from(b))),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map(f64::from)
            .map(Value::Real),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(Value::Real),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        }
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
        other => return Err(bad(format!("cannot copy a column of type {other}"))),
    }
    .unwrap_or(Value::Null))
}

/// A value ready for a column of a given type.
pub(super) enum PgValue {
    Bool(Option<bool>),
    Int2(Option<i16>),
    Int4(Option<i32>),
    Int8(Option<i64>),
    Float4(Option<f32>),
    Float8(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl PgValue {
    pub(super) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            PgValue::Bool(v) => v,
            PgValue::Int2(v) => v,
            PgValue::Int4(v) => v,
            PgValue::Int8(v) => v,
            PgValue::Float4(v) => v,
            PgValue::Float8(v) => v,
            PgValue::Text(v) => v,
            PgValue::Bytes(v) => v,
        }
    }
}

pub(super) fn integer_of(value: &Value) -> std::result::Result<Option<i64>, String> {
    Ok(match value {
        Value::Null => None,
        Value::Integer(n) => Some(*n),
        Value::Real(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(*x as i64),
        Value::Text(t) => Some(
            t.trim()
                .parse()
                .map_err(|_| format!("`{t}` is not an integer"))?,
        ),
        other => return Err(format!("{other} is not an integer")),
    })
}

pub(super) fn text_of(value: &Value) -> std::result::Result<Option<String>, String> {
    Ok(match value {
        Value::Null => None,
        // NUL cannot be stored in PostgreSQL text (see `without_nul`).
        Value::Text(t) => Some(t.replace('\0', "\u{FFFD}")),
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(x) => Some(x.to_string()),
        Value::Blob(b) => Some(
            String::from_utf8(b.clone())
                .map_err(|_| "bytes that are not UTF-8 text")?
                .replace('\0', "\u{FFFD}"),
        ),
    })
}

/// `value` converted for a column of type `ty`.
pub(super) fn to_pg(value: &Value, ty: &Type) -> std::result::Result<PgValue, String> {
    let small = |n: Option<i64>| -> std::result::Result<Option<i64>, String> { Ok(n) };
    Ok(match *ty {
        Type::BOOL => PgValue::Bool(integer_of(value)?.map(|n| n != 0)),
        Type::INT2 => PgValue::Int2(
            small(integer_of(value)?)?
                .map(i16::try_from)
                .transpose()
                .map_err(|_| "a number out of range".to_string())?,
        ),
        Type::INT4 => PgValue::Int4(
            integer_of(value)?
                .map(i32::try_from)
                .transpose()
                .map_err(|_| "a number out of range".to_string())?,
        ),
        Type::INT8 => PgValue::Int8(integer_of(value)?),
        Type::FLOAT4 | Type::FLOAT8 => {
            let x = match value {
                Value::Null => None,
                Value::Real(x) => Some(*x),
                Value::Integer(n) => Some(*n as f64),
                Value::Text(t) => Some(
                    t.trim()
                        .parse()
                        .map_err(|_| format!("`{t}` is not a number"))?,
                ),
                Value::Blob(_) => return Err("bytes are not a number".into()),
            };
            if *ty == Type::FLOAT4 {
                PgValue::Float4(x.map(|x| x as f32))
            } else {
                PgValue::Float8(x)
            }
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => PgValue::Text(text_of(value)?),
        Type::BYTEA => PgValue::Bytes(match value {
            Value::Null => None,
            Value::Blob(b) => Some(b.clone()),
            Value::Text(t) => Some(t.as_bytes().to_vec()),
            other => return Err(format!("{other} is not bytes")),
        }),
        ref other => return Err(format!("cannot copy into a column of type {other}")),
    })
}
