from flask_mcp_auth import generate_api_key


def test_seed_curl_test(make_app):
    client = make_app().test_client()
    body = client.get("/mcp/status", headers={"X-API-Key": "chatgpt-connector-key"}).get_json()
    assert body["authenticated"] is True
    assert body["principal"]["name"] == "ChatGPT Connector"


def test_signed_key_round_trip(make_app):
    client = make_app(JWT_SECRET="s").test_client()
    key = generate_api_key("chatgpt-connector-key", "s")
    assert client.get("/data", headers={"X-API-Key": key}).status_code == 200
    tampered = key[:-10] + ("B" if key[-10] == "A" else "A") + key[-9:]
    assert client.get("/data", headers={"X-API-Key": tampered}).status_code == 401
