//! The console's HTML: one layout (skip link, labelled navigation, one `h1` per page, a
//! sign-out form) and a function per page. maud escapes every value it is given, so a
//! partner's text (a customer's name, a reference) can never become markup.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use oytel_types::{
    AccountResponse, DeliveryAttempt, Esim, EsimStatus, Order, Package, Page, Transaction,
    WebhookEndpoint,
};

/// The pages of a signed-in partner, in the navigation's order.
pub const PARTNER_NAV: [(&str, &str); 6] = [
    ("Overview", "/dashboard"),
    ("eSIMs", "/dashboard/esims"),
    ("Orders", "/dashboard/orders"),
    ("Statement", "/dashboard/statement"),
    ("Webhooks", "/dashboard/webhooks"),
    ("API keys", "/dashboard/keys"),
];

/// The operator's pages.
pub const OPERATOR_NAV: [(&str, &str); 2] = [
    ("Partners", "/dashboard/admin"),
    ("Operations", "/dashboard/admin/operations"),
];

/// A page: its title, the navigation it belongs to (and which entry is current), the
/// session's CSRF token for its forms (none before sign-in), and its content.
pub fn layout(
    title: &str,
    nav: &[(&str, &str)],
    current: &str,
    csrf: Option<&str>,
    sign_out: &str,
    content: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Oytel console" }
                link rel="stylesheet" href="/dashboard/assets/app.css";
                script src="/dashboard/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "Oytel" }
                    @if !nav.is_empty() {
                        nav aria-label="Console" {
                            ul {
                                @for (label, href) in nav {
                                    li {
                                        @if *href == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(csrf) = csrf {
                        form.sign-out method="post" action=(sign_out) {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) } }
}

fn status_badge(status: EsimStatus) -> Markup {
    html! { span class={"badge " (status.as_str())} { (status.as_str()) } }
}

/// A sign-in page: the field, and why the last try failed.
pub fn sign_in(
    title: &str,
    action: &str,
    field: &str,
    label: &str,
    hint: &str,
    error: Option<&str>,
) -> Markup {
    let content = html! {
        @if let Some(error) = error {
            p.error role="alert" { (error) }
        }
        form.card method="post" action=(action) autocomplete="off" {
            label for=(field) { (label) }
            input id=(field) name=(field) type="password" required autofocus spellcheck="false" aria-describedby="hint";
            p #hint .hint { (hint) }
            button type="submit" { "Sign in" }
        }
    };
    layout(title, &[], "", None, "", content)
}

/// Counts per day, drawn as bars (an inline SVG with a text alternative).
pub fn day_chart(days: &[(String, u64)]) -> Markup {
    let max = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (width, height, bar) = (days.len() * 24, 120usize, 18usize);
    let summary: Vec<String> = days.iter().map(|(d, n)| format!("{d}: {n}")).collect();
    html! {
        figure {
            svg role="img" aria-label={"Provisionings per day. " (summary.join(", "))} viewBox={"0 0 " (width) " " (height + 20)} width="100%" {
                @for (i, (day, n)) in days.iter().enumerate() {
                    @let h = (*n as usize * height) / max as usize;
                    rect x=(i * 24 + 3) y=(height - h) width=(bar) height=(h) class="bar" {}
                    text x=(i * 24 + 12) y=(height + 14) text-anchor="middle" class="axis" { (&day[8..]) }
                }
            }
            figcaption { "Provisionings per day, last " (days.len()) " days" }
        }
    }
}

/// The partner's overview.
pub fn overview(
    account: &AccountResponse,
    by_state: &[(EsimStatus, u64)],
    days: &[(String, u64)],
    delivery_rate: Option<(u64, u64)>,
) -> Markup {
    html! {
        section.cards aria-label="At a glance" {
            div.card {
                h2 { "Balance" }
                p.big data-testid="balance" { "$" (account.balance.available) }
                p.hint { (account.environment.as_str()) " · minimum $" (account.balance.minimum) }
            }
            div.card {
                h2 { "eSIMs by state" }
                @if by_state.is_empty() {
                    p { "No eSIMs yet." }
                } @else {
                    ul.plain {
                        @for (state, n) in by_state {
                            li { (status_badge(*state)) " " (n) }
                        }
                    }
                }
            }
            div.card {
                h2 { "Webhook deliveries" }
                @if let Some((ok, all)) = delivery_rate {
                    p.big { (ok * 100 / all.max(1)) "%" }
                    p.hint { (ok) " of the last " (all) " attempts delivered" }
                } @else {
                    p { "No deliveries yet." }
                }
            }
        }
        section aria-label="Provisionings" { (day_chart(days)) }
    }
}

/// The eSIM list with its filters.
pub fn esims(
    page: &Page<Esim>,
    status: Option<&str>,
    search: &str,
    next: Option<String>,
) -> Markup {
    html! {
        form.filters method="get" action="/dashboard/esims" role="search" {
            label for="status" { "State" }
            select id="status" name="status" {
                option value="" { "Any" }
                @for s in EsimStatus::NAMES {
                    option value=(s) selected[status == Some(s)] { (s) }
                }
            }
            label for="q" { "Reference or customer email" }
            input id="q" name="q" type="search" value=(search);
            button type="submit" { "Filter" }
        }
        @if page.data.is_empty() {
            p { "No eSIMs match." }
        } @else {
            table {
                caption.visually-hidden { "eSIMs, newest first" }
                thead { tr { th scope="col" { "eSIM" } th scope="col" { "State" } th scope="col" { "Plan" } th scope="col" { "Customer" } th scope="col" { "Reference" } th scope="col" { "Created" } } }
                tbody {
                    @for e in &page.data {
                        tr {
                            td { a href={"/dashboard/esims/" (e.esim_id)} { (e.esim_id) } }
                            td { (status_badge(e.status)) }
                            td { (e.plan.name) }
                            td { (e.customer_email) }
                            td { (e.reference_id.as_deref().unwrap_or("—")) }
                            td { (time(e.created_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            a.next href=(next) rel="next" { "Older eSIMs →" }
        }
    }
}

/// One eSIM: its QR code, activation code, state, usage, packages and what happened to it.
pub fn esim(e: &Esim, packages: &[Package]) -> Markup {
    let used = e.usage.data_used_mb;
    let limit = e.usage.data_limit_mb.max(1);
    let mut timeline: Vec<(DateTime<Utc>, String)> = vec![(e.created_at, "Provisioned".into())];
    if let Some((profile, at)) = e.profile.as_ref().and_then(|p| Some((p, p.updated_at?))) {
        timeline.push((at, format!("Profile {}", profile.state.as_str())));
    }
    if let Some(at) = e.activated_at {
        timeline.push((at, "Activated".into()));
    }
    for p in packages.iter().filter(|p| p.position > 1) {
        timeline.push((
            p.created_at,
            format!("Package {} bought ({})", p.position, p.plan_id),
        ));
    }
    timeline.push((
        e.expires_at,
        if e.expires_at <= Utc::now() {
            "Expired".into()
        } else {
            "Expires".into()
        },
    ));
    timeline.sort_by_key(|(at, _)| *at);
    html! {
        div.esim {
            figure.qr {
                img src=(e.qr_code_url) alt={"QR code of the activation code of " (e.esim_id)} width="240" height="240" data-testid="qr";
                figcaption { "Scan with the phone's camera to install" }
            }
            dl.facts {
                dt { "State" } dd { (status_badge(e.status)) }
                dt { "Activation code" }
                dd {
                    code #activation-code data-testid="activation-code" { (e.activation_code) }
                    " "
                    button type="button" data-copy="activation-code" { "Copy" }
                }
                dt { "ICCID" } dd { code { (e.iccid) } }
                dt { "Plan" } dd { (e.plan.name) }
                dt { "Customer" } dd { (e.customer_name) " · " (e.customer_email) }
                dt { "Reference" } dd { (e.reference_id.as_deref().unwrap_or("—")) }
                dt { "Data" }
                dd {
                    meter min="0" max=(limit) value=(used) low=(limit / 2) high=(limit * 4 / 5) optimum="0" aria-label="Data used" { (used) " MB" }
                    " " (used) " of " (e.usage.data_limit_mb) " MB (thresholds at 50, 80 and 100 %)"
                }
            }
        }
        h2 { "Packages" }
        table {
            thead { tr { th scope="col" { "#" } th scope="col" { "Plan" } th scope="col" { "State" } th scope="col" { "Data" } th scope="col" { "Price" } } }
            tbody {
                @for p in packages {
                    tr { td { (p.position) } td { (p.plan_id) } td { (p.state.as_str()) } td { (p.data_used_mb) " / " (p.data_allowance_mb) " MB" } td { "$" (p.price) } }
                }
            }
        }
        h2 { "Timeline" }
        ol.timeline {
            @for (at, what) in &timeline {
                li { (time(*at)) " " (what) }
            }
        }
    }
}

/// The orders, newest first.
pub fn orders(page: &Page<Order>, next: Option<String>) -> Markup {
    html! {
        @if page.data.is_empty() { p { "No orders yet." } } @else {
            table {
                thead { tr { th scope="col" { "Order" } th scope="col" { "eSIM" } th scope="col" { "Plan" } th scope="col" { "Term" } th scope="col" { "Amount" } th scope="col" { "Created" } } }
                tbody {
                    @for o in &page.data {
                        tr {
                            td { (o.order_id) }
                            td { a href={"/dashboard/esims/" (o.esim_id)} { (o.esim_id) } }
                            td { (o.plan_id) }
                            td { (o.term_months) " mo" }
                            td { "$" (o.amount_usd) }
                            td { (time(o.created_at)) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next { a.next href=(next) rel="next" { "Older orders →" } }
    }
}

/// The statement (live keys), with its CSV.
pub fn statement(rows: &[Transaction], sandbox: bool, next: Option<String>) -> Markup {
    html! {
        @if sandbox {
            p { "A sandbox balance never moves: sign in with a live key to see the statement." }
        } @else {
            p { a href="/dashboard/statement.csv" download { "Download as CSV" } }
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Amount" } th scope="col" { "Balance after" } th scope="col" { "For" } } }
                tbody {
                    @for t in rows {
                        tr {
                            td { (time(t.created_at)) }
                            td { (t.kind.as_str()) }
                            td.num { "$" (t.amount) }
                            td.num { "$" (t.balance_after) }
                            td { (t.description) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next { a.next href=(next) rel="next" { "Older lines →" } }
    }
}

/// Webhook endpoints, the form to add one, and the delivery log.
pub fn webhooks(
    csrf: &str,
    endpoints: &[WebhookEndpoint],
    attempts: &[DeliveryAttempt],
    shown_secret: Option<(&str, &str)>,
) -> Markup {
    html! {
        @if let Some((id, secret)) = shown_secret {
            div.notice role="status" {
                p { "The signing secret of " (id) ", shown only now:" }
                code data-testid="secret" { (secret) }
                p.hint { "Reloading this page would send the form again (and rotate or add again): leave it by a link." }
            }
        }
        h2 { "Endpoints" }
        @if endpoints.is_empty() { p { "No endpoints yet." } } @else {
            table {
                thead { tr { th scope="col" { "Endpoint" } th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for e in endpoints {
                        tr {
                            td { a href={"/dashboard/webhooks/" (e.id)} { (e.id) } }
                            td { (e.url) }
                            td { @if e.events.is_empty() { "default" } @else { (e.events.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")) } }
                            td { (e.status.as_str()) }
                            td.actions {
                                form method="post" action={"/dashboard/webhooks/" (e.id) "/enabled"} {
                                    (csrf_field(csrf))
                                    @if e.status == oytel_types::EndpointStatus::Enabled {
                                        input type="hidden" name="enabled" value="false";
                                        button type="submit" { "Pause" }
                                    } @else {
                                        input type="hidden" name="enabled" value="true";
                                        button type="submit" { "Resume" }
                                    }
                                }
                                form method="post" action={"/dashboard/webhooks/" (e.id) "/test"} { (csrf_field(csrf)) button type="submit" { "Send a test event" } }
                                form method="post" action={"/dashboard/webhooks/" (e.id) "/rotate"} { (csrf_field(csrf)) button type="submit" { "Rotate the secret" } }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action="/dashboard/webhooks" {
            h3 { "Add an endpoint" }
            (csrf_field(csrf))
            label for="url" { "URL (https)" }
            input id="url" name="url" type="url" required placeholder="https://example.com/oytel";
            label for="description" { "Description (optional)" }
            input id="description" name="description" type="text" maxlength="200";
            button type="submit" { "Add the endpoint" }
        }
        h2 { "Delivery log" }
        @if attempts.is_empty() { p { "No deliveries yet." } } @else {
            table data-testid="delivery-log" {
                thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Attempt" } th scope="col" { "Answer" } th scope="col" { "Duration" } th scope="col" { "Delivery" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for a in attempts {
                        tr {
                            td { (time(a.created_at)) }
                            td { (a.event.as_str()) br; small { (a.event_id) } }
                            td { (a.attempt) }
                            td { @match a.status_code { Some(code) => (code), None => (a.error.as_deref().unwrap_or("no answer")) } }
                            td.num { (a.duration_ms) " ms" }
                            td { (a.delivery_status.as_str()) }
                            td {
                                form method="post" action={"/dashboard/webhooks/events/" (a.event_id) "/redeliver"} {
                                    (csrf_field(csrf))
                                    button type="submit" { "Redeliver" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The partner's API keys: never a secret.
pub fn keys(keys: &[oytel_core::ports::ApiKeyInfo]) -> Markup {
    html! {
        p { "Keys are shown once, when the operator creates them; this page never shows one." }
        (keys_table(keys, None))
    }
}

/// Keys (never a secret), with a revoke button each when `revoke` gives the form's CSRF
/// token and the partner.
fn keys_table(keys: &[oytel_core::ports::ApiKeyInfo], revoke: Option<(&str, &str)>) -> Markup {
    html! {
        table {
            thead {
                tr {
                    th scope="col" { "Key" } th scope="col" { "Starts with" } th scope="col" { "Environment" }
                    th scope="col" { "Created" } th scope="col" { "State" }
                    @if revoke.is_some() { th scope="col" { span.visually-hidden { "Actions" } } }
                }
            }
            tbody {
                @for k in keys {
                    tr {
                        td { (k.id) }
                        td { code { (k.hint) "…" } }
                        td { (k.environment.as_str()) }
                        td { (time(k.created_at)) }
                        td {
                            @if let Some(at) = k.revoked_at { "revoked " (time(at)) }
                            @else if let Some(at) = k.expires_at { "expires " (time(at)) }
                            @else { "active" }
                        }
                        @if let Some((csrf, partner_id)) = revoke {
                            td {
                                @if k.revoked_at.is_none() {
                                    form method="post" action={"/dashboard/admin/keys/" (k.id) "/revoke"} {
                                        (csrf_field(csrf))
                                        input type="hidden" name="partner_id" value=(partner_id);
                                        button type="submit" { "Revoke " span.visually-hidden { (k.id) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The operator's partners, each with its live balance and a credit form, and the form to
/// add one.
pub fn partners(
    csrf: &str,
    partners: &[(oytel_core::ports::Partner, i64)],
    created: Option<&str>,
) -> Markup {
    html! {
        @if let Some(id) = created {
            div.notice role="status" { p { "Partner " code { (id) } " created. Create its keys with " code { "oytel-server key create" } "." } }
        }
        table {
            thead { tr { th scope="col" { "Partner" } th scope="col" { "Name" } th scope="col" { "Live balance" } th scope="col" { "Credit" } } }
            tbody {
                @for (p, balance) in partners {
                    tr {
                        td { a href={"/dashboard/admin/partners/" (p.id)} { (p.id) } }
                        td { (p.name) }
                        td.num data-testid={"balance-" (p.id)} { "$" (oytel_types::Amount::from_cents(*balance)) }
                        td {
                            form.inline method="post" action={"/dashboard/admin/partners/" (p.id) "/credit"} {
                                (csrf_field(csrf))
                                label for={"amount-" (p.id)} .visually-hidden { "Amount to credit to " (p.name) ", USD" }
                                input id={"amount-" (p.id)} name="amount" inputmode="decimal" required pattern="[0-9]+(\\.[0-9]{1,2})?" placeholder="100.00" size="8";
                                button type="submit" { "Credit" }
                            }
                        }
                    }
                }
            }
        }
        form.card method="post" action="/dashboard/admin/partners" {
            h2 { "Add a partner" }
            (csrf_field(csrf))
            label for="name" { "Name" }
            input id="name" name="name" required maxlength="200";
            label for="email" { "Contact email (optional)" }
            input id="email" name="email" type="email";
            button type="submit" { "Add the partner" }
        }
    }
}

/// A short page saying what went wrong, with a way back.
pub fn problem(title: &str, message: &str, back: &str) -> Markup {
    layout(
        title,
        &[],
        "",
        None,
        "",
        html! {
            p.error role="alert" { (message) }
            p { a href=(back) { "Back" } }
        },
    )
}

/// One partner for the operator: its keys (create — shown once —, revoke) and its limits.
pub fn partner(
    csrf: &str,
    partner: &oytel_core::ports::Partner,
    keys: &[oytel_core::ports::ApiKeyInfo],
    limits: &oytel_core::limits::LimitOverrides,
    new_key: Option<&str>,
) -> Markup {
    let value = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    html! {
        @if let Some(key) = new_key {
            div.notice role="status" {
                p { "The new key, shown only now: give it to the partner over a safe channel." }
                code data-testid="new-key" { (key) }
                p.hint { "Reloading this page would send the form again and create another key: leave it by a link." }
            }
        }
        p { (partner.name) @if let Some(email) = &partner.email { " · " (email) } }
        h2 { "API keys" }
        (keys_table(keys, Some((csrf, &partner.id))))
        form.card method="post" action={"/dashboard/admin/partners/" (partner.id) "/keys"} {
            h3 { "Create a key" }
            (csrf_field(csrf))
            label for="environment" { "Environment" }
            select id="environment" name="environment" {
                option value="sandbox" { "sandbox" }
                option value="production" { "production (live)" }
            }
            button type="submit" { "Create the key" }
        }
        form.card method="post" action={"/dashboard/admin/partners/" (partner.id) "/limits"} {
            h3 { "Limits" }
            p.hint { "Empty: the server's default." }
            (csrf_field(csrf))
            label for="provision_per_hour" { "Provisionings per hour" }
            input id="provision_per_hour" name="provision_per_hour" inputmode="numeric" pattern="[0-9]*" value=(value(limits.provision_per_hour));
            label for="status_per_hour" { "eSIM reads per hour" }
            input id="status_per_hour" name="status_per_hour" inputmode="numeric" pattern="[0-9]*" value=(value(limits.status_per_hour));
            label for="burst_per_second" { "Requests per second" }
            input id="burst_per_second" name="burst_per_second" inputmode="numeric" pattern="[0-9]*" value=(value(limits.burst_per_second));
            button type="submit" { "Save the limits" }
        }
    }
}

/// What the operator watches: the webhook queue, the profile stock, this instance's recent
/// server errors.
pub fn operations(
    figures: &oytel_core::ports::Figures,
    stock: &[oytel_core::inventory::Stock],
    errors_by_code: &[(oytel_types::ErrorCode, usize)],
    errors: &[crate::recent_errors::ServerError],
) -> Markup {
    html! {
        section.cards aria-label="Webhook queue" {
            div.card {
                h2 { "Webhook queue" }
                p.big data-testid="pending" { (figures.pending_deliveries) }
                p.hint { "deliveries pending; the oldest waiting " (figures.oldest_pending_seconds.round()) " s" }
            }
            div.card {
                h2 { "Disabled endpoints" }
                p.big data-testid="disabled-endpoints" { (figures.disabled_endpoints) }
                p.hint { "by their partner, after a 410 Gone, or after failing for days" }
            }
            div.card {
                h2 { "Low balances" }
                p.big { (figures.partners_below_low_balance) }
                p.hint { "partners under the threshold they set" }
            }
        }
        h2 { "Profile stock" }
        @if stock.is_empty() {
            p { "No profile batches imported (profiles are generated, or come from an SM-DP+)." }
        } @else {
            table {
                thead { tr { th scope="col" { "Profile type" } th scope="col" { "Environment" } th scope="col" { "Available" } th scope="col" { "On eSIMs" } } }
                tbody {
                    @for s in stock {
                        tr { td { (s.profile_type) } td { (s.environment.as_str()) } td.num { (s.available) } td.num { (s.allocated) } }
                    }
                }
            }
        }
        h2 { "Recent server errors (this instance)" }
        @if errors.is_empty() {
            p { "None since this instance started." }
        } @else {
            ul.plain {
                @for (code, n) in errors_by_code { li { code { (code) } " × " (n) } }
            }
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Status" } th scope="col" { "Code" } th scope="col" { "Request" } } }
                tbody {
                    @for e in errors {
                        tr { td { (time(e.at)) } td { (e.status) } td { code { (e.code) } } td { (e.request_id.as_deref().unwrap_or("—")) } }
                    }
                }
            }
        }
    }
}

/// One endpoint's form: its address, description and the events it receives.
pub fn endpoint(csrf: &str, e: &WebhookEndpoint) -> Markup {
    html! {
        form.card method="post" action={"/dashboard/webhooks/" (e.id)} {
            (csrf_field(csrf))
            label for="url" { "URL (https)" }
            input id="url" name="url" type="url" required value=(e.url);
            label for="description" { "Description" }
            input id="description" name="description" type="text" maxlength="200" value=(e.description.as_deref().unwrap_or(""));
            fieldset {
                legend { "Events (none ticked: the default ones)" }
                @for t in oytel_types::EventType::ALL {
                    @let id = format!("event-{}", t.as_str().replace('.', "-"));
                    div {
                        input type="checkbox" id=(id) name={"event:" (t.as_str())} checked[e.events.contains(&t)];
                        " "
                        label.inline-label for=(id) { (t.as_str()) }
                    }
                }
            }
            button type="submit" { "Save the endpoint" }
        }
        p { a href="/dashboard/webhooks" { "Back to the webhooks" } }
    }
}
