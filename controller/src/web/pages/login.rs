//! Logging in and out: the login form (with a pre-login CSRF cookie), the session cookie it
//! sets, and where a login goes next (only a local path).

use axum::Form;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::web::auth::{self, LoginOutcome};
use crate::web::html::page;
use crate::web::{App, ClientAddr, WebError};

#[derive(Debug, Deserialize)]
pub struct LoginParams {
    next: Option<String>,
}

/// Where to go after logging in: a path of this site, nothing else.
fn next_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_page(csrf: &str, next: &str, message: Option<&str>) -> Html<String> {
    page(
        "Log in",
        None,
        None,
        html! {
            h1 { "Log in" }
            @if let Some(m) = message { p.error #login-error { (m) } }
            form #login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label { "User " input type="text" name="name" autocomplete="username" required autofocus; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login form, with a fresh pre-login token in a cookie and the form.
pub async fn login_form(State(app): State<App>, Query(params): Query<LoginParams>) -> Response {
    if !app.auth.required() {
        return Redirect::to("/").into_response();
    }
    let token = match auth::random_token() {
        Ok(t) => t,
        Err(e) => {
            return WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e)
                .page()
                .into_response();
        }
    };
    let next = next_path(params.next.as_deref());
    let mut response = login_page(&token, &next, None).into_response();
    set(
        response.headers_mut(),
        &auth::set_cookie(
            auth::PRELOGIN_COOKIE,
            &token,
            Some(std::time::Duration::from_secs(3600)),
            app.https,
        ),
    );
    response
}

fn set(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
    next: Option<String>,
}

/// Checks the login form: its token against the pre-login cookie, then the password.
pub async fn login(
    State(app): State<App>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !app.auth.required() {
        return Redirect::to("/").into_response();
    }
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::PRELOGIN_COOKIE))
        .unwrap_or("");
    if cookie.is_empty() || !auth::same_token(cookie, &form.csrf) {
        return WebError::forbidden("the login form has expired: reload it and try again")
            .page()
            .into_response();
    }
    let next = next_path(form.next.as_deref());
    let checker = app.clone();
    let (name, password) = (form.name.clone(), form.password);
    let outcome =
        tokio::task::spawn_blocking(move || checker.auth.log_in(client.0.ip(), &name, &password))
            .await
            .unwrap_or(LoginOutcome::Refused);
    match outcome {
        LoginOutcome::Session { token, .. } => {
            tracing::info!(user = form.name, client = %client.0.ip(), "logged in");
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            set(
                headers,
                &auth::set_cookie(auth::SESSION_COOKIE, &token, None, app.https),
            );
            set(
                headers,
                &auth::set_cookie(
                    auth::PRELOGIN_COOKIE,
                    "",
                    Some(std::time::Duration::ZERO),
                    app.https,
                ),
            );
            response
        }
        LoginOutcome::Refused => {
            tracing::warn!(user = form.name, client = %client.0.ip(), "login refused");
            (
                StatusCode::UNAUTHORIZED,
                login_page(cookie, &next, Some("Wrong user name or password.")),
            )
                .into_response()
        }
        LoginOutcome::Wait(wait) => {
            let seconds = wait.as_secs().max(1);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                login_page(
                    cookie,
                    &next,
                    Some(&format!(
                        "Too many failed logins: try again in {seconds} s."
                    )),
                ),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// Ends the session.
pub async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::SESSION_COOKIE))
    {
        app.auth.close_session(token);
    }
    let mut response = Redirect::to("/login").into_response();
    set(
        response.headers_mut(),
        &auth::set_cookie(
            auth::SESSION_COOKIE,
            "",
            Some(std::time::Duration::ZERO),
            app.https,
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(next_path(Some("/devices/mtr-1")), "/devices/mtr-1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "x", ""] {
            assert_eq!(next_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(next_path(None), "/");
    }
}
