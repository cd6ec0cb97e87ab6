"""Creating configurations, license servers, products and features through the API in tests,
and bookings directly in the database."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Booking, Job


class Catalog:
    """Posts resources as an admin and returns their JSON; fails the test unless 201."""

    def __init__(self, client: FlaskClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def create(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"/lm/{path}", json=payload, headers=self.headers)
        assert response.status_code == 201, response.json
        return response.json

    def configuration(self, name: str = "configuration-name", **fields: Any) -> dict[str, Any]:
        payload = {"cluster_client_id": "cluster-a", "grace_time": 60, "type": "flexlm"}
        return self.create("configurations", {"name": name, **payload, **fields})

    def license_server(self, config_id: int, host: str = "licserv0001", port: int = 1234):
        return self.create("license_servers", {"config_id": config_id, "host": host, "port": port})

    def product(self, name: str = "abaqus") -> dict[str, Any]:
        return self.create("products", {"name": name})

    def feature(self, config_id: int, product_id: int, name: str = "abaqus", **fields: Any):
        payload = {"name": name, "config_id": config_id, "product_id": product_id, **fields}
        return self.create("features", payload)


def add_booking(app: Flask, feature_id: int, quantity: int, cluster: str = "cluster-a") -> int:
    """A job of `cluster` holding `quantity` of a feature, written through the models; its id."""
    with app.app_context():
        job = Job(
            slurm_job_id=str(db.session.scalar(select(func.count(Job.id))) + 1),
            cluster_client_id=cluster,
            username="user123",
            lead_host="node01",
            bookings=[Booking(feature_id=feature_id, quantity=quantity)],
        )
        db.session.add(job)
        db.session.commit()
        return job.id
