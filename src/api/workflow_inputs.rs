//! Checks a run's `inputs` and `files` against the app's form and upload settings, with
//! Dify's error code (`invalid_param`) and a message naming the input.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::ApiError;
use crate::workflow::app::{AppDefinition, InputField, InputKind};

/// A run's `inputs`, each name given once: of two values for one input, which one the run
/// should use is a guess (serde_json's map keeps the last). Refused as serde words a
/// repeated struct field, so the 400 names it (`inputs.name`, see `extract::decode_json`).
#[derive(Debug)]
pub struct RunInputs(pub Map<String, Value>);

impl<'de> Deserialize<'de> for RunInputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = RunInputs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of inputs by name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RunInputs, A::Error> {
                let mut inputs = Map::new();
                while let Some(name) = map.next_key::<String>()? {
                    if inputs.contains_key(&name) {
                        return Err(de::Error::custom(format_args!("duplicate field `{name}`")));
                    }
                    let value = map.next_value()?;
                    inputs.insert(name, value);
                }
                Ok(RunInputs(inputs))
            }
        }
        deserializer.deserialize_map(Names)
    }
}

/// One item of a run's `files`, with the fields Dify's Workflow API documents (the
/// dify-client sends `type`, `transfer_method` and `upload_file_id` or `url`); any other,
/// or one given twice, is refused rather than ignored. Values stay JSON for
/// [`validate_files`], which words their problems as Dify does.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WorkflowFileItem)]
pub struct FileItem {
    /// `document`, `image`, `audio`, `video` or `custom`, as the app allows.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    kind: Option<Value>,
    /// `remote_url` (with `url`) or `local_file` (with `upload_file_id`).
    #[schema(value_type = Option<String>)]
    transfer_method: Option<Value>,
    #[schema(value_type = Option<String>)]
    url: Option<Value>,
    /// An id `POST /v1/files/upload` answered.
    #[schema(value_type = Option<String>)]
    upload_file_id: Option<Value>,
}

impl FileItem {
    /// The item as the JSON object it was sent as.
    pub fn into_value(self) -> Value {
        let fields = [
            ("type", self.kind),
            ("transfer_method", self.transfer_method),
            ("url", self.url),
            ("upload_file_id", self.upload_file_id),
        ];
        Value::Object(fields.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect())
    }
}

/// The inputs with defaults applied, or the first problem. Inputs the form does not declare
/// are dropped (as Dify does), except for upstream apps, which pass them on.
pub fn validate_inputs(
    app: &AppDefinition,
    mut given: Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for field in &app.inputs {
        let name = &field.variable;
        let Some(value) = given_or_default(field, given.remove(name)) else {
            if field.required {
                return Err(ApiError::invalid(
                    format!("inputs.{name}"),
                    format!("{name} is required in input form"),
                ));
            }
            continue;
        };
        let field_name = format!("inputs.{name}");
        let value = match field.kind {
            InputKind::TextInput | InputKind::Paragraph | InputKind::Select => {
                check_text(field, value, field_name)?
            }
            InputKind::Number => number_input(name, value, field_name)?,
            InputKind::File => {
                if !value.is_object() {
                    return Err(ApiError::invalid(
                        field_name,
                        format!("{name} in input form must be a file object"),
                    ));
                }
                check_file(app, &value, &field_name)?;
                value
            }
            InputKind::FileList => check_file_list(app, name, value, &field_name)?,
        };
        out.insert(name.clone(), value);
    }
    if app.upstream.is_some() {
        // The upstream app owns its form: what this app does not declare passes through.
        out.extend(given);
    }
    Ok(out)
}

/// The value a form field gets: the one given, or its default when none (or a blank one,
/// as Dify treats `""` and `null`) was given. `None` when both are missing or blank.
fn given_or_default(field: &InputField, given: Option<Value>) -> Option<Value> {
    match given {
        Some(v) if !is_blank(&v) => Some(v),
        _ => field.default.clone().filter(|d| !is_blank(d)),
    }
}

/// A text, paragraph or select input: a string within the field's `max_length` (counted
/// in characters, as Dify does) and, for a select, one of its options.
fn check_text(field: &InputField, value: Value, field_name: String) -> Result<Value, ApiError> {
    let name = &field.variable;
    let Value::String(text) = &value else {
        return Err(ApiError::invalid(
            field_name,
            format!("{name} in input form must be a string"),
        ));
    };
    if let Some(max) = field.max_length {
        if text.chars().count() > max {
            return Err(ApiError::invalid(
                field_name,
                format!("{name} in input form must be less than {max} characters"),
            ));
        }
    }
    if field.kind == InputKind::Select && !field.options.contains(text) {
        return Err(ApiError::invalid(
            field_name,
            format!("{name} in input form must be one of the following: {:?}", field.options),
        ));
    }
    Ok(value)
}

/// A number input: a JSON number, or a string that reads as one (as Dify: "3" becomes the
/// integer 3, "2.5" the float 2.5; neither NaN nor infinity is a number here).
fn number_input(name: &str, value: Value, field_name: String) -> Result<Value, ApiError> {
    let number = match &value {
        Value::Number(_) => return Ok(value),
        Value::String(s) => match (s.trim().parse::<i64>(), s.trim().parse::<f64>()) {
            (Ok(i), _) => Some(json!(i)),
            (_, Ok(n)) if n.is_finite() => Some(json!(n)),
            _ => None,
        },
        _ => None,
    };
    number.ok_or_else(|| {
        ApiError::invalid(field_name, format!("{name} in input form must be a valid number"))
    })
}

/// A file-list input: an array whose every item passes [`check_file`] (named by index).
fn check_file_list(
    app: &AppDefinition,
    name: &str,
    value: Value,
    field_name: &str,
) -> Result<Value, ApiError> {
    let Some(items) = value.as_array() else {
        return Err(ApiError::invalid(
            field_name,
            format!("{name} in input form must be a list of files"),
        ));
    };
    for (i, item) in items.iter().enumerate() {
        check_file(app, item, &format!("{field_name}[{i}]"))?;
    }
    Ok(value)
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str().is_some_and(str::is_empty)
}

/// Checks the run's `files` list against the app's upload settings.
pub fn validate_files(app: &AppDefinition, files: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    if files.is_empty() {
        return Ok(files);
    }
    if !app.file_upload.enabled {
        return Err(ApiError::invalid("files", "this app does not accept files"));
    }
    if files.len() > app.file_upload.number_limits {
        return Err(ApiError::invalid(
            "files",
            format!("at most {} files", app.file_upload.number_limits),
        ));
    }
    for (i, file) in files.iter().enumerate() {
        check_file(app, file, &format!("files[{i}]"))?;
    }
    Ok(files)
}

fn check_file(app: &AppDefinition, file: &Value, field: &str) -> Result<(), ApiError> {
    let kind = file.get("type").and_then(Value::as_str).unwrap_or("");
    if !app.file_upload.allowed_types.iter().any(|t| t == kind) {
        return Err(ApiError::invalid(field, format!("file type `{kind}` is not allowed here")));
    }
    let method = file.get("transfer_method").and_then(Value::as_str).unwrap_or("");
    if !app.file_upload.transfer_methods.iter().any(|m| m == method) {
        return Err(ApiError::invalid(
            field,
            format!("transfer_method `{method}` is not allowed here"),
        ));
    }
    match method {
        "remote_url" => {
            let url = file.get("url").and_then(Value::as_str).unwrap_or("");
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                _ => Err(ApiError::invalid(field, "remote_url needs an absolute http(s) `url`")),
            }
        }
        "local_file" => match file.get("upload_file_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(()),
            _ => {
                Err(ApiError::invalid(field, "local_file needs the `upload_file_id` of an upload"))
            }
        },
        _ => Err(ApiError::invalid(field, "transfer_method must be remote_url or local_file")),
    }
}

/// Uploads up to this size are inlined in the completion's `file_payload.url` as a data URL
/// (uiform's MIMEData); larger ones are referred to by id only.
const INLINE_LIMIT: u64 = 1024 * 1024;

/// Resolves `local_file` entries (of `files` and of file inputs) to their uploads: unknown
/// ids are a 400; known ones gain `filename`, `mime_type`, `size` and a data URL.
pub async fn resolve_files(
    store: &crate::store::Store,
    app: &AppDefinition,
    files: &mut [Value],
    inputs: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    for (i, file) in files.iter_mut().enumerate() {
        resolve(store, app, file, &format!("files[{i}]")).await?;
    }
    for field in
        app.inputs.iter().filter(|f| matches!(f.kind, InputKind::File | InputKind::FileList))
    {
        let name = format!("inputs.{}", field.variable);
        match inputs.get_mut(&field.variable) {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    resolve(store, app, item, &format!("{name}[{i}]")).await?;
                }
            }
            Some(item @ Value::Object(_)) => resolve(store, app, item, &name).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn resolve(
    store: &crate::store::Store,
    app: &AppDefinition,
    file: &mut Value,
    field: &str,
) -> Result<(), ApiError> {
    if file.get("transfer_method").and_then(Value::as_str) != Some("local_file") {
        return Ok(());
    }
    let id = file.get("upload_file_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let (upload, data) = store.upload(app.id.clone(), id.clone()).await.map_err(|e| match e {
        crate::store::StoreError::NotFound(_) => ApiError::invalid(
            field,
            format!("upload_file_id `{id}` is not a file uploaded to this app"),
        ),
        // Content retention removed its bytes: a 410 naming the input that refers to it.
        gone @ crate::store::StoreError::ContentGone { .. } => {
            ApiError::from(gone).with_field(field)
        }
        other => other.into(),
    })?;
    let url = if upload.size <= INLINE_LIMIT {
        use base64::Engine;
        format!(
            "data:{};base64,{}",
            upload.mime_type,
            base64::engine::general_purpose::STANDARD.encode(&data)
        )
    } else {
        String::new()
    };
    if let Some(obj) = file.as_object_mut() {
        obj.insert("filename".into(), upload.name.into());
        obj.insert("mime_type".into(), upload.mime_type.into());
        obj.insert("size".into(), upload.size.into());
        obj.insert("url".into(), url.into());
    }
    Ok(())
}
