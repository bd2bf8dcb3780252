//! Schemas of what the derived ones cannot describe: the protocol crate's types (it is
//! `no_std` and knows nothing of OpenAPI) and the store's generic [`Record`].

use std::borrow::Cow;

use utoipa::openapi::schema::{
    AllOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::store::Record;
/// An id's schema: the registry's ids are numbers assigned by the store or ids of the
/// protocol's rule (devices, areas: 1–32 of `[A-Za-z0-9_-]`).
pub(crate) trait IdSchema {
    /// Its schema.
    fn id_schema() -> Schema;
}

impl IdSchema for i64 {
    fn id_schema() -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .into()
    }
}

/// The protocol's id rule as a schema.
fn protocol_id() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(32))
        .pattern(Some("^[A-Za-z0-9_-]{1,32}$"))
        .into()
}

impl IdSchema for firegrid_protocols::GridId {
    fn id_schema() -> Schema {
        protocol_id()
    }
}

impl IdSchema for firegrid_protocols::DeviceId {
    fn id_schema() -> Schema {
        protocol_id()
    }
}

/// A stored record as the API shows it: its id, its fields, `created_ms` and `updated_ms`.
impl<F: ToSchema, I: IdSchema> PartialSchema for Record<F, I> {
    fn schema() -> RefOr<Schema> {
        let ms = || -> Schema {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(0))
                .into()
        };
        let own = ObjectBuilder::new()
            .property("id", I::id_schema())
            .required("id")
            .property("created_ms", ms())
            .required("created_ms")
            .property("updated_ms", ms())
            .required("updated_ms");
        AllOfBuilder::new()
            .item(Ref::from_schema_name(F::name()))
            .item(own)
            .into()
    }
}

impl<F: ToSchema, I: IdSchema> ToSchema for Record<F, I> {
    fn name() -> Cow<'static, str> {
        let fields = F::name();
        Cow::Owned(fields.strip_suffix("Fields").unwrap_or(&fields).to_string())
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((F::name().into_owned(), F::schema()));
        F::schemas(schemas);
    }
}

/// An id of the protocol's rule (devices, areas): 1–32 of `[A-Za-z0-9_-]`.
#[derive(Debug)]
pub(crate) struct ProtocolId;

impl PartialSchema for ProtocolId {
    fn schema() -> RefOr<Schema> {
        protocol_id().into()
    }
}

impl ToSchema for ProtocolId {}

/// A measured value against its set-point ([`firegrid_protocols::message::Level`]).
#[derive(Debug)]
pub(crate) struct Level;

impl PartialSchema for Level {
    fn schema() -> RefOr<Schema> {
        let int = || -> Schema {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                .into()
        };
        ObjectBuilder::new()
            .description(Some(
                "A value against its set-point, in the quantity's unit (mA or deci-°C)",
            ))
            .property(
                "quantity",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["residual_current", "temperature"])),
            )
            .required("quantity")
            .property("value", int())
            .required("value")
            .property("threshold", int())
            .required("threshold")
            .into()
    }
}

impl ToSchema for Level {}
