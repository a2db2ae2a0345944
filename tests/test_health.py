def test_health_reports_database_ok_without_a_token(client):
    result = client.simulate_get("/health")
    assert result.status_code == 200
    assert result.json == {"status": "ok", "database": "ok"}
