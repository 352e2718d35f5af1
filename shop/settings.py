"""Settings of the demo Oscar shop that hosts productsync."""

import os
from pathlib import Path

import dj_database_url
from oscar.defaults import *  # noqa: F403

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "productsync-demo-not-secret")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.flatpages",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "sorl.thumbnail",
    "django_tables2",
    "django_q",
    "productsync",
]

SITE_ID = 1

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

AUTHENTICATION_BACKENDS = (
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
)

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    },
]

# SQLite by default so a newcomer needs no server; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the one writer instead of failing with "database is locked"; take the write
    # lock at BEGIN so two runs cannot both read a free lease and then both write it.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# Oscar's catalogue and category pages list products through haystack: the demo's engine
# browses the database (shop/search.py), as haystack's simple engine finds nothing there.
HAYSTACK_CONNECTIONS = {
    "default": {"ENGINE": "shop.search.BrowseEngine"},
}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

OSCAR_DEFAULT_CURRENCY = "GBP"
OSCAR_SHOP_NAME = "productsync demo shop"

# django-q2: the ORM broker needs no server; set Q_REDIS_URL to use Redis in production.
# Clusters on several machines cooperate when they share the broker, the database, the
# cluster name (Q_CLUSTER_NAME) and SECRET_KEY (tasks are signed with it).
Q_CLUSTER = {
    # django-q2 also reads Q_CLUSTER_NAME itself (as an alternative cluster when it differs
    # from "name"); taking the name from it keeps the two equal.
    "name": os.environ.get("Q_CLUSTER_NAME", "productsync"),
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    # A task (a whole scheduled sync) may take `timeout` seconds; `retry` is larger so the ORM
    # broker never hands a task that is still running to a second worker.
    "timeout": int(os.environ.get("Q_TIMEOUT", "3600")),
    "retry": int(os.environ.get("Q_RETRY", "3900")),
    # A failed sync is not retried by django-q2: the next scheduled run converges instead.
    "max_attempts": 1,
    "ack_failures": True,
    # After downtime, run a missed schedule once, not once per missed slot.
    "catch_up": False,
    "orm": "default",
    # Seconds between two polls of the ORM broker, and between two rounds of the cluster's
    # guard (django-q2 runs its scheduler once the guard has counted 30 seconds).
    "poll": float(os.environ.get("Q_POLL", "0.2")),
    "guard_cycle": float(os.environ.get("Q_GUARD_CYCLE", "0.5")),
}
# django-q2 keeps each cluster's status in a cache; the admin reads it to tell whether a
# cluster is running, so it must be one the web and qcluster processes share (the table is
# made by `manage.py createcachetable`; the test database gets it automatically).
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "productsync_q": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "productsync_q_cache",
    },
}
Q_CLUSTER["cache"] = "productsync_q"
if os.environ.get("Q_REDIS_URL"):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = os.environ["Q_REDIS_URL"]

PRODUCTSYNC = {
    "SOURCE": os.environ.get("PRODUCTSYNC_SOURCE", str(BASE_DIR / "fixtures" / "products.json")),
    "BATCH_SIZE": 15,
    "STALE_AFTER": int(os.environ.get("PRODUCTSYNC_STALE_AFTER", "300")),
    "SCHEDULE": os.environ.get("PRODUCTSYNC_SCHEDULE") or None,
    "WORKERS": os.environ.get("PRODUCTSYNC_WORKERS", "local"),
    # Feeds' alerts: the webhook signature's key, hosts a webhook or an admin-entered URL may
    # reach although private (comma-separated), and the site's URL for links in alerts.
    "WEBHOOK_SECRET": os.environ.get("PRODUCTSYNC_WEBHOOK_SECRET") or None,
    "ALLOW_PRIVATE": [h for h in os.environ.get("PRODUCTSYNC_ALLOW_PRIVATE", "").split(",") if h],
    "BASE_URL": os.environ.get("PRODUCTSYNC_BASE_URL") or None,
}
if os.environ.get("PRODUCTSYNC_UPLOAD_MAX_BYTES"):
    PRODUCTSYNC["UPLOAD_MAX_BYTES"] = int(os.environ["PRODUCTSYNC_UPLOAD_MAX_BYTES"])

# Alerts by e-mail: Django's mail settings (the demo prints them unless told otherwise).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
ADMINS = [("Shop team", os.environ.get("ADMIN_EMAIL", "shop-team@example.com"))]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"productsync": {"handlers": ["console"], "level": "WARNING"}},
}
