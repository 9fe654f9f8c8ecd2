"""The published Python SDK `oytel-esim-sdk==1.0.0`, unchanged, against our server.

Each test follows a flow of the SDK's README: plans, provisioning, status, error handling,
the OpenAPI spec, the context manager, downloading the QR code and batch provisioning.
"""

import json

import pytest
import requests

from oytel import OytelAPIError, OytelAuthError, OytelClient, OytelError


@pytest.fixture
def client(server, partner):
    with OytelClient(api_key=partner["sandbox"], base_url=server.base_url) as c:
        yield c


def test_environment_is_detected_from_the_key(server, partner):
    assert OytelClient(api_key=partner["sandbox"], base_url=server.base_url).get_environment() == "sandbox"
    assert OytelClient(api_key=partner["live"], base_url=server.base_url).get_environment() == "production"


def test_get_plans_readme_flow(client):
    plans = client.get_plans()
    assert len(plans["plans"]) >= 12
    for plan in plans["plans"]:
        # The README prints exactly these.
        assert plan["name"]
        assert plan["pricing"]["base_price"] > 0
        assert plan["coverage"]
        assert plan["data_allowance"]
        assert plan["validity_days"] > 0
    uk = next(p for p in plans["plans"] if p["id"] == "uk-massive-650")
    assert uk["pricing"]["base_price"] == 29.95
    assert plans["meta"]["total"] == len(plans["plans"])


def test_provision_and_status_readme_flow(client):
    esim = client.provision_esim(
        plan_id="eu-roam-50",
        customer_email="customer@example.com",
        customer_name="John Doe",
        reference_id="order-123",
        webhook_url="https://your-app.com/webhook",
    )
    info, billing = esim["esim"], esim["billing"]
    assert esim["success"] is True
    assert esim["order_id"].startswith("ord_")
    assert info["esim_id"].startswith("esim_")
    assert info["iccid"].startswith("8944")
    assert info["qr_code_url"].startswith("http")
    assert info["activation_code"].startswith("LPA:1$")
    assert info["status"] == "provisioned"
    assert info["expires_at"]
    assert billing["cost_usd"] == 24.95
    assert billing["remaining_balance"] == 100.0

    status = client.get_esim_status(info["esim_id"])
    s = status["esim"]
    assert s["status"] == "provisioned"
    assert s["activation"]["activated"] is False
    assert s["usage"]
    usage = s["usage"]
    assert usage["used_mb"] == 0
    assert usage["total_mb"] == 50000
    assert usage["remaining_mb"] == 50000
    assert usage["usage_percentage"] == 0
    # The README reads connection only when it is set.
    assert not s["connection"]


def test_error_handling_readme_flow(server, client, partner):
    with pytest.raises(OytelAPIError) as err:
        client.provision_esim(plan_id="invalid-plan", customer_email="test@example.com", customer_name="Test User")
    assert err.value.status_code == 404
    assert err.value.error_code == "PLAN_NOT_FOUND"
    assert "invalid-plan" in err.value.message

    with pytest.raises(OytelAPIError) as err:
        client.provision_esim(plan_id="eu-roam-50", customer_email="not-an-email", customer_name="Test User")
    assert err.value.status_code == 400
    assert err.value.error_code == "VALIDATION_ERROR"

    with pytest.raises(OytelAPIError) as err:
        client.get_esim_status("esim_doesnotexist")
    assert err.value.status_code == 404
    assert err.value.error_code == "ESIM_NOT_FOUND"

    unknown = OytelClient(api_key="sk_sandbox_" + "x" * 40, base_url=server.base_url)
    with pytest.raises(OytelAuthError):
        unknown.get_plans()

    revocable = server.admin("key", "create", "--partner", partner["id"], "--env", "sandbox")
    key_id = [line for line in server.admin("key", "list", "--partner", partner["id"]).splitlines()
              if revocable[:15] in line]
    assert len(key_id) == 1
    server.admin("key", "revoke", json.loads(key_id[0])["id"])
    with pytest.raises(OytelAuthError):
        OytelClient(api_key=revocable, base_url=server.base_url).get_plans()

    with pytest.raises(OytelAuthError):
        OytelClient(api_key="not-a-key")

    with pytest.raises(OytelError):
        OytelClient(api_key=partner["sandbox"], base_url="http://127.0.0.1:9", timeout=2).get_plans()


def test_live_billing_and_insufficient_balance(server, partner):
    live = OytelClient(api_key=partner["live"], base_url=server.base_url)
    # $200 balance, $25 minimum: a $39.99 order fits four times, not five.
    balances = []
    for _ in range(4):
        esim = live.provision_esim(plan_id="global-connect-10", customer_email="a@example.com", customer_name="A")
        assert esim["billing"]["cost_usd"] == 39.99
        balances.append(esim["billing"]["remaining_balance"])
    assert balances == [160.01, 120.02, 80.03, 40.04]
    with pytest.raises(OytelAPIError) as err:
        live.provision_esim(plan_id="global-connect-10", customer_email="a@example.com", customer_name="A")
    assert err.value.status_code == 402
    assert err.value.error_code == "INSUFFICIENT_BALANCE"


def test_openapi_spec(client):
    spec = client.get_openapi_spec()
    assert spec.startswith("openapi: 3.1")
    assert "/api/v1/esim/provision:" in spec


def test_download_the_qr_code(client):
    esim = client.provision_esim(plan_id="eu-roam-50", customer_email="c@example.com", customer_name="C")
    response = requests.get(esim["esim"]["qr_code_url"], timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_provisioning(client):
    customers = [
        {"name": "John Doe", "email": "john@example.com", "order_id": "ORD001"},
        {"name": "Jane Smith", "email": "jane@example.com", "order_id": "ORD002"},
        {"name": "Bad Email", "email": "nope", "order_id": "ORD003"},
    ]
    results = []
    for customer in customers:
        try:
            esim = client.provision_esim(
                plan_id="eu-roam-50",
                customer_email=customer["email"],
                customer_name=customer["name"],
                reference_id=customer.get("order_id"),
            )
            results.append({"esim_id": esim["esim"]["esim_id"], "success": True})
        except Exception as e:  # the README's pattern
            results.append({"error": str(e), "success": False})
    assert [r["success"] for r in results] == [True, True, False]
    assert "VALIDATION_ERROR" in results[2]["error"]
