def test_admin_creates_a_task(client, factory):
    admin = factory.admin()
    response = client.post(
        "/api/v1/tasks",
        headers=factory.headers(admin),
        json={"name": "t", "labels": [{"name": "a"}]},
    )
    assert response.status_code == 201, response.text
    assert response.json()["labels"][0]["name"] == "a"


def test_jobs_from_factory(client, factory):
    admin = factory.admin()
    task = factory.task(admin, frames=25, segment_size=10)
    body = client.get(f"/api/v1/tasks/{task.id}", headers=factory.headers(admin)).json()
    assert [(s["start_frame"], s["stop_frame"]) for s in body["segments"]] == [
        (0, 9),
        (10, 19),
        (20, 24),
    ]
    assert body["state"] == "in_progress"
