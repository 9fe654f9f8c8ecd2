//! Public QR code images. The URL carries a secret token (about 190 bits), so it works
//! without an API key and can be emailed to the customer; it is never logged.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use oytel_types::ErrorBody;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::state::AppState;

/// The QR code of an eSIM's activation code, as PNG (`<token>.png`) or SVG (`<token>.svg`).
#[utoipa::path(get, path = "/qr/{file}", tag = "esims",
    params(("file" = String, Path, description = "`<token>.png` or `<token>.svg`, from `qr_code_url`")),
    responses(
        (status = 200, description = "The image", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml"))),
        (status = 404, description = "No such QR code", body = ErrorBody)))]
pub async fn qr_image(
    State(state): State<AppState>,
    ApiPath(file): ApiPath,
) -> Result<Response, ApiError> {
    let (token, extension) = file.rsplit_once('.').ok_or_else(ApiError::not_found)?;
    if !matches!(extension, "png" | "svg")
        || token.len() != 32
        || !token.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(ApiError::not_found());
    }
    let esim = state
        .store
        .get_esim_by_qr_token(token)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (content_type, body) = if extension == "png" {
        (
            "image/png",
            crate::qr::png(&esim.activation_code).map_err(ApiError::internal)?,
        )
    } else {
        (
            "image/svg+xml",
            crate::qr::svg(&esim.activation_code)
                .map_err(ApiError::internal)?
                .into_bytes(),
        )
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    Ok((headers, body).into_response())
}
