//! The management API's OpenAPI document, generated from the handlers'
//! annotations and the request and record types, served without auth at
//! `/api/openapi.json` so that tools can read what `/api` offers.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard management API",
        description = "The loopback API behind the Switchyard app: channels, routes, gateway keys, \
                       buckets, receipts, spend and health. Every route takes the admin token \
                       (`Authorization: Bearer sya-…`); money is in integer micro-units of each \
                       bucket's own currency, never blended across buckets."
    ),
    paths(
        super::admin::status,
        super::api::buckets,
        super::api::topup,
        super::api::entries,
        super::api::receipt_page,
        super::api::receipt,
        super::api::spend_report,
        super::api::list_keys,
        super::api::create_key,
        super::api::revoke_key,
        super::api::set_key_budgets,
        super::manage::list_channels,
        super::manage::one_channel,
        super::manage::add_channel,
        super::manage::edit_channel,
        super::manage::remove_channel,
        super::manage::set_secret,
        super::manage::delete_secret,
        super::manage::test_channel,
        super::manage::presets,
        super::manage::local_servers,
        super::manage::list_routes,
        super::manage::one_route,
        super::manage::add_route,
        super::manage::edit_route,
        super::manage::remove_route,
        super::manage::dry_run,
        super::manage::health,
        super::manage::pause,
        super::manage::resume,
        super::chat_api::list_conversations,
        super::chat_api::create_conversation,
        super::chat_api::get_conversation,
        super::chat_api::patch_conversation,
        super::chat_api::delete_conversation,
        super::chat_api::send,
        super::chat_api::regenerate,
        super::chat_api::edit,
        super::chat_api::stop,
        super::chat_api::export,
        super::chat_api::import,
        super::chat_api::folders,
        super::chat_api::attach,
        super::chat_api::estimate,
        super::chat_api::models,
        super::chat_api::settings,
        super::chat_api::put_settings,
    ),
    components(schemas(crate::request::ErrorBody)),
    security(("admin_token" = [])),
    modifiers(&AdminToken)
)]
struct ApiDoc;

/// The refusals many operations share, for their `responses(…)`. They only
/// describe the document: the handlers answer with [`GatewayError`](super::GatewayError).
#[allow(dead_code)]
mod refusals {
    use super::super::ErrorBody;

    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 400,
        description = "Bad input; the message says what to change"
    )]
    pub struct BadInput(ErrorBody);

    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, description = "No such object")]
    pub struct NotFound(ErrorBody);

    #[derive(utoipa::IntoResponses)]
    #[response(status = 409, description = "It exists already")]
    pub struct Exists(ErrorBody);
}
pub(super) use refusals::{BadInput, Exists, NotFound};

/// Every operation takes the admin token: the scheme, and the 401 every
/// operation answers without it.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let unauthorized = ResponseBuilder::new()
            .description("No admin token, or a gateway key instead of it")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                op.responses
                    .responses
                    .insert("401".into(), unauthorized.clone().into());
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (`sya-…`): `switchyard serve` prints it in the admin \
                         link, and keeps it in the OS keyring. Gateway keys do not open /api.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document itself (for tests and tools).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
