"""Database tables. The schema itself only changes through Flask-Migrate migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from lm_common.facts import REPORT_STATUSES, SERVER_TYPES

# What the epilog did about a job that died for lack of a license.
LICENSE_FAILURE_ACTIONS = ("requeued", "left_failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Configuration(db.Model):
    """A license pool description of one cluster: server type, grace time, servers, features."""

    __tablename__ = "configurations"
    __table_args__ = (
        UniqueConstraint("cluster_client_id", "name"),
        CheckConstraint("grace_time >= 0", name="grace_time_not_negative"),
        CheckConstraint("booking_max_age >= 0", name="booking_max_age_not_negative"),
        CheckConstraint(
            "type IN ({})".format(", ".join(f"'{t}'" for t in SERVER_TYPES)), name="known_type"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    cluster_client_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    grace_time: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # A booking whose job is not seen checking out is dropped after max(grace_time, this).
    booking_max_age: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=1800, server_default="1800"
    )
    type: Mapped[str] = mapped_column(String(16), nullable=False)

    license_servers: Mapped[list[LicenseServer]] = relationship(
        back_populates="configuration",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="LicenseServer.id",
    )
    features: Mapped[list[Feature]] = relationship(
        back_populates="configuration",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Feature.id",
    )


class LicenseServer(db.Model):
    """One license server (host:port); several in a configuration are mirrors of one another."""

    __tablename__ = "license_servers"
    __table_args__ = (
        UniqueConstraint("config_id", "host", "port"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config_id: Mapped[int] = mapped_column(
        ForeignKey("configurations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False)

    configuration: Mapped[Configuration] = relationship(back_populates="license_servers")


class Product(db.Model):
    """A licensed product (abaqus, ansys, ...); features of many configurations refer to it.

    Names are unique case-insensitively: `ABAQUS` and `abaqus` are one product, so clusters
    cannot split one license server's pool in two by spelling it differently.
    """

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)

    # "all": never detach features on delete; the database refuses (RESTRICT) while any exist.
    features: Mapped[list[Feature]] = relationship(back_populates="product", passive_deletes="all")


PRODUCT_NAME_INDEX = Index("uq_products_lower_name", func.lower(Product.name), unique=True)


class Feature(db.Model):
    """One product.feature of a configuration, with the last usage the agent reported."""

    __tablename__ = "features"
    __table_args__ = (
        UniqueConstraint("config_id", "product_id", "name"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint(
            "report_status IS NULL OR report_status IN ({})".format(
                ", ".join(f"'{s}'" for s in REPORT_STATUSES)
            ),
            name="known_report_status",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    config_id: Mapped[int] = mapped_column(
        ForeignKey("configurations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reserved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    used: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    report_status: Mapped[str | None] = mapped_column(String(16))
    # Seconds between the reporting agent's cycles, as it stated: how long its report is fresh.
    report_interval: Mapped[int | None] = mapped_column(Integer)
    # Counters for /lm/metrics (backend/history.py): bookings and licenses granted on it.
    bookings_granted: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    licenses_granted: Mapped[int] = mapped_column(
        BigInteger, nullable=False, default=0, server_default="0"
    )
    # The expiry date the license server last printed for it (9999-12-31: never), if any.
    license_expires: Mapped[date | None] = mapped_column(Date)

    product: Mapped[Product] = relationship(back_populates="features")
    configuration: Mapped[Configuration] = relationship(back_populates="features")
    bookings: Mapped[list[Booking]] = relationship(
        back_populates="feature", cascade="all, delete-orphan", passive_deletes=True
    )


class Job(db.Model):
    """A Slurm job of one cluster that holds (or held) bookings."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("cluster_client_id", "slurm_job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slurm_job_id: Mapped[str] = mapped_column(String(64), nullable=False)
    cluster_client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    lead_host: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )

    bookings: Mapped[list[Booking]] = relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Booking.id",
    )


class Booking(db.Model):
    """Licenses of one feature set aside for a job until it checks them out or ends."""

    __tablename__ = "bookings"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), nullable=False, index=True
    )
    quantity: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )

    job: Mapped[Job] = relationship(back_populates="bookings")
    feature: Mapped[Feature] = relationship(back_populates="bookings")


class LicenseFailure(db.Model):
    """A job the epilog found dead for lack of a license, and what it did about it (history)."""

    __tablename__ = "license_failures"
    __table_args__ = (
        CheckConstraint(
            "action IN ({})".format(", ".join(f"'{a}'" for a in LICENSE_FAILURE_ACTIONS)),
            name="known_action",
        ),
        CheckConstraint("requeue_count >= 0", name="requeue_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slurm_job_id: Mapped[str] = mapped_column(String(64), nullable=False)
    cluster_client_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    username: Mapped[str] = mapped_column(String(255), nullable=False)
    feature: Mapped[str] = mapped_column(String(511), nullable=False)
    matched_rule: Mapped[str] = mapped_column(String(511), nullable=False)
    output_file: Mapped[str | None] = mapped_column(String(4096))
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    requeue_count: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class OAuthClient(db.Model):
    """An OAuth2 client of the built-in issuer (a cluster agent, an admin, the CLI)."""

    __tablename__ = "oauth_clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    secret_hash: Mapped[str] = mapped_column(Text, nullable=False)
    permissions: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class SigningKey(db.Model):
    """The built-in issuer's private key, shared by every API process on this database."""

    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    private_pem: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class Person(db.Model):
    """Someone who logs in (lm-cli, browser) as themselves with a name and a password."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    permissions: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )


class DeviceAuthorization(db.Model):
    """A pending `lm-cli login` (RFC 8628): its codes, and the person's answer once given."""

    __tablename__ = "device_authorizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the device code: the polling client's secret is never stored in clear.
    device_code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    user_code: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # NULL until the person answers; then who answered and whether they approved.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    approved: Mapped[bool | None] = mapped_column(Boolean)


class RefreshToken(db.Model):
    """A person's refresh token (stored as its SHA-256): renews their session until revoked."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), nullable=False, index=True
    )
    client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False, default="")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )

    person: Mapped[Person] = relationship()


class ReconcileLease(db.Model):
    """Which agent of a cluster may reconcile now: one row per cluster (backend/lease.py).

    Sites run the agent on a primary and a backup slurmctld; the lease keeps them from sizing the
    same reservation at once. Times come from the database's clock, never from the hosts'.
    """

    __tablename__ = "reconcile_leases"

    cluster_client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), nullable=False)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UsageSample(db.Model):
    """One feature's figures at one usage report (history, backend/history.py).

    Kept raw for LM_HISTORY_RAW_DAYS, then only as hourly rollups (UsageHour).
    """

    __tablename__ = "usage_samples"
    __table_args__ = (
        # Rollup and pruning read time ranges: a BRIN index is tiny on insertion-ordered rows.
        Index("ix_usage_samples_sampled_at", "sampled_at", postgresql_using="brin"),
    )

    feature_id: Mapped[int] = mapped_column(
        ForeignKey("features.id", ondelete="CASCADE"), primary_key=True
    )
    sampled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used: Mapped[int] = mapped_column(BigInteger, nullable=False)
    booked: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reserved: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # What the agent's Slurm reservation held, and what pending jobs waited for (None: not sent).
    reservation: Mapped[int | None] = mapped_column(BigInteger)
    demand: Mapped[int | None] = mapped_column(BigInteger)
    interval: Mapped[int | None] = mapped_column(Integer)
    # [{"username", "lead_host", "count"}] as the license server printed them; None when none.
    checkouts: Mapped[list[dict[str, object]] | None] = mapped_column(JSONB)


class UsageHour(db.Model):
    """One feature's samples of one hour, downsampled (min/mean/max), kept LM_HISTORY_HOURLY_DAYS.

    No foreign key: writing rollups must not lock feature rows that bookings lock.
    """

    __tablename__ = "usage_hourly"

    feature_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer, nullable=False)
    # Samples at 100 % (nothing left to book) and samples whose server was not read.
    full_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    failed_samples: Mapped[int] = mapped_column(Integer, nullable=False)
    total_min: Mapped[int] = mapped_column(BigInteger, nullable=False)
    total_max: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used_min: Mapped[int] = mapped_column(BigInteger, nullable=False)
    used_mean: Mapped[float] = mapped_column(Float, nullable=False)
    used_max: Mapped[int] = mapped_column(BigInteger, nullable=False)
    booked_min: Mapped[int] = mapped_column(BigInteger, nullable=False)
    booked_mean: Mapped[float] = mapped_column(Float, nullable=False)
    booked_max: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reserved_max: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reservation_min: Mapped[int | None] = mapped_column(BigInteger)
    reservation_mean: Mapped[float | None] = mapped_column(Float)
    reservation_max: Mapped[int | None] = mapped_column(BigInteger)
    demand_min: Mapped[int | None] = mapped_column(BigInteger)
    demand_mean: Mapped[float | None] = mapped_column(Float)
    demand_max: Mapped[int | None] = mapped_column(BigInteger)


class HistoryState(db.Model):
    """One row: how far raw samples are rolled up into hours, and pruned (backend/history.py)."""

    __tablename__ = "history_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rolled_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pruned_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refusal(db.Model):
    """A license the API refused to book for a job, and why (history; no foreign key)."""

    __tablename__ = "refusals"
    __table_args__ = (
        Index("ix_refusals_feature_id_refused_at", "feature_id", "refused_at"),
        Index("ix_refusals_refused_at", "refused_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    refused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    cluster_client_id: Mapped[str] = mapped_column(String(255), nullable=False)
    feature_id: Mapped[int | None] = mapped_column(Integer)
    product_feature: Mapped[str] = mapped_column(String(511), nullable=False)
    requested: Mapped[int] = mapped_column(BigInteger, nullable=False)
    available: Mapped[int | None] = mapped_column(BigInteger)
    # REFUSAL_REASONS (lm_common.facts): a metric label; `detail` says it in words.
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)


class RefusalCounter(db.Model):
    """Refusals counted per cluster, license and reason: /lm/metrics' counter, which pruning of
    the refusal history must not lower. No foreign key: counting locks no feature row."""

    __tablename__ = "refusal_counters"

    cluster_client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    product_feature: Mapped[str] = mapped_column(String(511), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)


class JobRefusal(db.Model):
    """The prolog's last refusal of a Slurm job (backend/why.py): one row per cluster's job,
    replaced by each refusal, deleted with the job or after WHY_KEEP. No foreign key: a refused
    job has no row in `jobs` (nothing is recorded when its booking is refused)."""

    __tablename__ = "job_refusals"

    cluster_client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    slurm_job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    refused_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    # Tracked licenses the job wanted: {"<feature id>": quantity}.
    wanted: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False)
    # The 409's errors with their reason codes: {"product.feature": {"requested", ...}}.
    reasons: Mapped[dict[str, dict[str, object]]] = mapped_column(JSONB, nullable=False)


class TokenAttempt(db.Model):
    """Token requests counted against one client id or remote address (backend/auth/throttle)."""

    __tablename__ = "token_attempts"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
