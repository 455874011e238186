//! What a person clicks, in a real headless Chromium: the overview renders, hydrates, and a click on a
//! resource navigates client-side to its page; Refresh fetches a new snapshot without a reload.

use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// chromedriver and the Chromium it started share a process group: end them all, also when a test
    /// fails before closing its session (otherwise each failure leaves a browser running).
    fn drop(&mut self) {
        if let Some(pid) = self.driver.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Browser {
    let driver_bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let chrome_bin = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = free_port();
    let driver = Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("browser tests need {driver_bin} (make test installs chromium-driver): {e}")
        });
    let status = format!("http://127.0.0.1:{port}/status");
    wait_for("chromedriver", Duration::from_secs(20), || async {
        reqwest::get(&status)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chrome_bin,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1000",
                     format!("--user-data-dir={}", profile.path().display())]
        }
    });
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Browser {
        client,
        driver,
        _profile: profile,
    }
}

/// Loads `url` and waits until the page has hydrated.
async fn open(c: &Client, url: &str) {
    c.goto(url).await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("body[data-hydrated='true']"))
        .await
        .expect("the page hydrates");
}

/// Signs in through the sign-in page as a new user with `role`; returns the user name.
async fn sign_in(c: &Client, app: &TestApp, role: app::auth::Role) -> String {
    let name = format!(
        "{}-{}",
        role.as_str(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let password = app.user(&name, role).await;
    c.goto(&format!("{}/signin", app.url)).await.unwrap();
    c.find(Locator::Css("input[name='name']"))
        .await
        .unwrap()
        .send_keys(&name)
        .await
        .unwrap();
    c.find(Locator::Css("input[name='password']"))
        .await
        .unwrap()
        .send_keys(&password)
        .await
        .unwrap();
    c.find(Locator::Css("button[data-action='signin']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!(
            "[data-testid='who'][data-role='{}']",
            role.as_str()
        )))
        .await
        .expect("signed in");
    name
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether the window marker set on the overview survived: true only without a full page load.
async fn same_document(c: &Client) -> bool {
    c.execute("return window.__stayed || null;", vec![])
        .await
        .unwrap()
        == serde_json::json!("yes")
}

#[tokio::test]
async fn overview_hydrates_and_navigates_to_a_resource_by_click() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;

    open(c, &app.url).await;
    let names = c.find_all(Locator::Css("a.resource-link")).await.unwrap();
    assert_eq!(names.len(), 15);

    // A marker on window survives only a client-side navigation, not a page load.
    c.execute("window.__stayed = 'yes';", vec![]).await.unwrap();
    c.find(Locator::Css(
        "a.resource-link[href='/resources/mlopsnew-dev-aks']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let title = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(
            "//h1[@class='resource-title' and text()='mlopsnew-dev-aks']",
        ))
        .await
        .expect("the AKS page appears");
    assert_eq!(title.text().await.unwrap(), "mlopsnew-dev-aks");
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/resources/mlopsnew-dev-aks"));
    let body = text(c, "main").await;
    assert!(body.contains("Node pools") && body.contains("Standard_DS2_v2"));
    assert!(
        same_document(c).await,
        "navigation reloaded the page instead of routing in the browser"
    );

    // Refresh: a new snapshot arrives without a reload.
    let fetched = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid='fetched-at']"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    c.find(Locator::Css("form.inline button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let mut changed = false;
    for _ in 0..200 {
        // The bar re-renders as the refresh lands: it may be missing for a moment.
        let now = match c.find(Locator::Css("[data-testid='fetched-at']")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !now.is_empty() && now != fetched {
            changed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(changed, "the fetched-at time did not move after Refresh");
    assert!(same_document(c).await, "Refresh reloaded the page");

    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn a_training_job_submitted_from_the_form_is_watched_to_completion() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;
    open(c, &format!("{}/train", app.url)).await;
    c.find(Locator::Css("input[name='form[reason]']"))
        .await
        .unwrap()
        .send_keys("browser test")
        .await
        .unwrap();
    // A double click: the second is either ignored (button disabled) or answered with the same run.
    let button = c
        .find(Locator::Css("form.form button[type='submit']"))
        .await
        .unwrap();
    button.click().await.unwrap();
    let _ = button.click().await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(
            "[data-testid='run-status'] [data-status='succeeded']",
        ))
        .await
        .expect("the run page follows the job to success without a reload");
    assert!(c.current_url().await.unwrap().path().starts_with("/runs/"));
    let log = text(c, "[data-testid='run-log']").await;
    assert!(log.contains("Finished: succeeded"), "{log}");
    let runs: i64 = sqlx::query_scalar("select count(*) from runs")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(runs, 1, "one click, one run");
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

/// Sends a trigger through the API and waits for its run to succeed.
async fn api_run(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> String {
    let r: serde_json::Value = app
        .http
        .request(method, format!("{}{path}", app.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: {r}"))
        .to_string();
    wait_for("the run to succeed", Duration::from_secs(60), || async {
        let (_, run) = app.json(&format!("/api/v1/runs/{id}")).await;
        run["status"] == "succeeded"
    })
    .await;
    id
}

async fn wait_for_run_page(c: &Client) {
    wait_for_run_status(c, "succeeded").await;
}

async fn wait_for_run_status(c: &Client, status: &str) {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!(
            "[data-testid='run-status'] [data-status='{status}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("the run ends {status} on its page"));
}

/// Moves a slider (or types in a number field) the way a person does: the value changes, `input` fires.
async fn slide(c: &Client, css: &str, value: i64) {
    c.execute(
        "const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input', {bubbles: true}));",
        vec![serde_json::json!(css), serde_json::json!(value.to_string())],
    )
    .await
    .unwrap();
}

async fn traffic_of(c: &Client, deployment: &str) -> String {
    c.find(Locator::Css(&format!(
        "tr[data-deployment='{deployment}'] td[data-traffic]"
    )))
    .await
    .unwrap()
    .attr("data-traffic")
    .await
    .unwrap()
    .unwrap_or_default()
}

#[tokio::test]
async fn traffic_is_shifted_and_rolled_back_from_the_endpoints_page() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let (post, put) = (reqwest::Method::POST, reqwest::Method::PUT);
    let spec = serde_json::to_value(app::model::TrainingJobSpec::seed_default()).unwrap();
    let training = api_run(&app, post.clone(), "/api/v1/jobs/training", spec).await;
    api_run(
        &app,
        post.clone(),
        "/api/v1/models",
        serde_json::json!({"training_run": training}),
    )
    .await;
    let deployments = "/api/v1/endpoints/ml-endpoint-staging/deployments";
    api_run(
        &app,
        post.clone(),
        deployments,
        serde_json::json!({"deployment": "blue", "model": "diabetes-classifier:1"}),
    )
    .await;
    api_run(
        &app,
        put,
        "/api/v1/endpoints/ml-endpoint-staging/traffic",
        serde_json::json!({"traffic": {"blue": 100}}),
    )
    .await;
    api_run(
        &app,
        post,
        deployments,
        serde_json::json!({"deployment": "green", "model": "diabetes-classifier:1"}),
    )
    .await;

    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;
    let endpoints = format!("{}/endpoints", app.url);
    open(c, &endpoints).await;
    assert_eq!(traffic_of(c, "green").await, "0");
    c.find(Locator::Css("button[data-preset='90/10']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_page(c).await;

    open(c, &endpoints).await;
    assert_eq!(
        (traffic_of(c, "blue").await, traffic_of(c, "green").await),
        ("90".into(), "10".into())
    );
    c.find(Locator::Css("button[data-action='rollback']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_page(c).await;

    open(c, &endpoints).await;
    assert_eq!(
        (traffic_of(c, "blue").await, traffic_of(c, "green").await),
        ("100".into(), "0".into())
    );

    // The slider editor checks the split as it moves; Apply waits for a valid one.
    c.find(Locator::Css(".split-editor summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let apply = "button[data-action='apply-split']";
    slide(c, "tr[data-slider='green'] input[type=range]", 30).await;
    assert_eq!(text(c, "td[data-total]").await, "130%");
    assert!(text(c, ".split-editor .problems")
        .await
        .contains("must total 100%"));
    assert!(c
        .find(Locator::Css(&format!("{apply}:disabled")))
        .await
        .is_ok());
    slide(c, "tr[data-slider='blue'] input[type=range]", 70).await;
    slide(c, "tr[data-slider='green'] input.mirror", 10).await;
    assert!(text(c, ".split-editor .problems")
        .await
        .contains("cannot also be mirrored"));
    slide(c, "tr[data-slider='green'] input.mirror", 0).await;
    assert_eq!(text(c, "td[data-total]").await, "100%");
    c.find(Locator::Css(&format!("{apply}:not(:disabled)")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_page(c).await;
    open(c, &endpoints).await;
    assert_eq!(
        (traffic_of(c, "blue").await, traffic_of(c, "green").await),
        ("70".into(), "30".into())
    );

    // A deployment Azure fails part-way: the run page says so, and the split is as it was.
    let form = c.find(Locator::Css("form.form")).await.unwrap();
    form.find(Locator::Css("input[name='deployment']"))
        .await
        .unwrap()
        .send_keys("broken")
        .await
        .unwrap();
    form.find(Locator::Css("textarea[name='environment']"))
        .await
        .unwrap()
        .send_keys("EMULATOR_FAIL=true")
        .await
        .unwrap();
    form.find(Locator::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_status(c, "failed").await;
    assert!(text(c, "main").await.contains("traffic was not changed"));
    open(c, &endpoints).await;
    assert_eq!(
        (
            traffic_of(c, "blue").await,
            traffic_of(c, "green").await,
            traffic_of(c, "broken").await
        ),
        ("70".into(), "30".into(), "0".into())
    );
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn the_train_and_deploy_pipeline_is_one_click_and_watched_to_completion() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;
    open(c, &format!("{}/endpoints", app.url)).await;
    c.find(Locator::Css("button[data-action='train-deploy']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_page(c).await;
    let log = text(c, "[data-testid='run-log']").await;
    assert!(
        log.contains("Step 6/6: rollout-aks") && log.contains("Finished: succeeded"),
        "{log}"
    );
    open(c, &format!("{}/endpoints", app.url)).await;
    assert_eq!(traffic_of(c, "model-v1").await, "0", "deployed at 0%");
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn a_saved_query_draws_its_chart_and_a_bad_one_says_why() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;
    open(c, &format!("{}/queries", app.url)).await;
    c.find(Locator::Css("li[data-saved='requests-by-deployment'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(
            "svg.chart polyline[data-series='ml-inference']",
        ))
        .await
        .expect("the time series is drawn");
    let meta = text(c, "[data-testid='result-meta']").await;
    assert!(meta.contains("rows") && meta.contains("ms"), "{meta}");
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("q=requests"));
    let csv = c
        .find(Locator::Css("a[data-action='csv']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let body = app
        .http
        .get(format!("{}{csv}", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.starts_with("cloud_RoleName,timestamp,requests\r\n"),
        "{body}"
    );

    // A query with a mistake, run with Ctrl+Enter: the reason shows where the result would be.
    let editor = c.find(Locator::Css("textarea[name='q']")).await.unwrap();
    editor.clear().await.unwrap();
    editor.send_keys("requests | where").await.unwrap();
    c.execute(
        "document.querySelector(\"textarea[name='q']\").dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', ctrlKey: true, bubbles: true}));",
        vec![],
    )
    .await
    .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".query-error"))
        .await
        .expect("the error is shown");
    assert!(text(c, ".query-error").await.contains("SyntaxError"));
    open(c, &format!("{}/queries", app.url)).await;
    assert!(
        text(c, "ul.recent").await.contains("requests | where"),
        "recent queries list it"
    );
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn an_alert_is_acknowledged_with_a_comment_from_the_alerts_page() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Operator).await;
    open(c, &format!("{}/alerts", app.url)).await;
    let row = c
        .find(Locator::Css("tr[data-alert][data-state='New']"))
        .await
        .expect("a new alert is listed");
    let id = row.attr("data-alert").await.unwrap().unwrap();
    assert!(
        row.find(Locator::Css("button[data-action='runbook']"))
            .await
            .is_ok(),
        "the runbook is one click away"
    );
    row.find(Locator::Css("input[name='comment']"))
        .await
        .unwrap()
        .send_keys("on it")
        .await
        .unwrap();
    row.find(Locator::Css("button[data-action='set-state']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!(
            "tr[data-alert='{id}'][data-state='Acknowledged']"
        )))
        .await
        .expect("the row shows the new state");
    let (_, runs) = app.json("/api/v1/runs?kind=alert-state").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    let (_, run) = app
        .json(&format!(
            "/api/v1/runs/{}",
            runs["runs"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(run["reason"], "on it");
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn a_viewer_sees_no_deploy_and_is_refused_an_operator_deploys_with_a_reason_on_record() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let b = browser().await;
    let c = &b.client;
    sign_in(c, &app, app::auth::Role::Viewer).await;
    open(c, &format!("{}/endpoints", app.url)).await;
    assert!(
        c.find(Locator::Css("button[data-action='deploy']"))
            .await
            .is_err(),
        "no Deploy for viewers"
    );
    assert!(
        c.find(Locator::Css("a[href='/train']")).await.is_err(),
        "no Train in the menu"
    );
    // Going around the UI: a direct call with the viewer's own session and token is still refused.
    let status = c
        .execute_async(
            "const done = arguments[0];
             fetch('/api/whoami', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}})
               .then(r => r.json())
               .then(me => fetch('/api/deploy', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded', 'accept': 'application/json'},
                   body: new URLSearchParams({endpoint: 'ml-endpoint-staging', deployment: 'sneaky', model: 'diabetes-classifier:1',
                     instance_count: '1', idempotency_key: 'x', csrf_token: me.csrf})}))
               .then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, serde_json::json!(403));
    c.find(Locator::Css("form.user-menu button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("button[data-action='signin']"))
        .await
        .expect("signed out");

    // An operator deploys with a reason; the audit page shows who and why.
    let who = sign_in(c, &app, app::auth::Role::Operator).await;
    let post = reqwest::Method::POST;
    let spec = serde_json::to_value(app::model::TrainingJobSpec::seed_default()).unwrap();
    let training = api_run(&app, post.clone(), "/api/v1/jobs/training", spec).await;
    api_run(
        &app,
        post,
        "/api/v1/models",
        serde_json::json!({"training_run": training}),
    )
    .await;
    open(c, &format!("{}/endpoints", app.url)).await;
    let form = c.find(Locator::Css("form.form")).await.unwrap();
    form.find(Locator::Css("input[name='deployment']"))
        .await
        .unwrap()
        .send_keys("blue")
        .await
        .unwrap();
    form.find(Locator::Css("input[name='reason_text']"))
        .await
        .unwrap()
        .send_keys("first release to staging")
        .await
        .unwrap();
    form.find(Locator::Css("button[data-action='deploy']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_run_page(c).await;
    open(c, &format!("{}/audit?action=deploy", app.url)).await;
    let row = text(c, "table.audit tbody tr").await;
    assert!(
        row.contains(&who) && row.contains("fn:deploy") && row.contains("first release to staging"),
        "{row}"
    );
    b.client.clone().close().await.unwrap();
    app.server.stop().await;
}

#[tokio::test]
async fn signing_in_with_entra_id_lands_on_the_page_asked_for_with_the_groups_role() {
    let db = TestDb::new().await;
    let mut config = config(&db);
    config.oidc_issuer = Some("emulator".into());
    let app = TestApp::ready(config).await;
    let b = browser().await;
    let c = &b.client;
    // Asked for the cost page while signed out: the sign-in page, then Entra ID, then the cost page.
    // Hydrated first: the client-side router must leave this link to the browser.
    open(c, &format!("{}/cost", app.url)).await;
    c.find(Locator::Css("a[data-action='signin-entra']"))
        .await
        .expect("the sign-in page offers Entra ID")
        .click()
        .await
        .unwrap();
    let omar = mlops_console::emulator::entra::USERS[1].1;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("button[data-account='{omar}']")))
        .await
        .expect("the emulated Entra ID's account picker")
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("[data-testid='who'][data-role='operator']"))
        .await
        .expect("signed in as an operator");
    assert_eq!(c.current_url().await.unwrap().path(), "/cost");
    assert!(text(c, "[data-testid='who']")
        .await
        .contains("Omar Operator"));
    // Operators see Train; the session is the console's own from here on.
    assert!(c.find(Locator::Css("a[href='/train']")).await.is_ok());
    open(c, &format!("{}/runs", app.url)).await;
    assert!(c.find(Locator::Css("[data-testid='who']")).await.is_ok());
    app.server.stop().await;
}
