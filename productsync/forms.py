"""The admin's forms: a feed to upload (or a URL) with how to read it, and a retry."""

from django import forms

from productsync.conf import MAX_BATCH_SIZE, app_settings
from productsync.services import FORMATS, PRESETS, is_url


class UploadForm(forms.Form):
    file = forms.FileField(
        required=False,
        help_text="A feed file: JSON, JSON Lines, CSV, XML or an Excel workbook (.xlsx).",
    )
    url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="...or the http(s) URL of a feed, read by the worker.",
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "from the name and content")] + [(f, f) for f in FORMATS],
    )
    mapping = forms.FileField(
        required=False, help_text="A mapping file (TOML or JSON) for a feed in a foreign shape."
    )
    preset = forms.ChoiceField(
        required=False,
        choices=[("", "detected from a CSV header or an XML namespace")]
        + [(p, p) for p in PRESETS],
        help_text="A platform's export or a Google Merchant Center feed, read with the "
        "mapping productsync ships for it.",
    )
    sheet = forms.CharField(
        required=False,
        max_length=100,
        help_text="The sheet of an Excel workbook to read (empty: the first).",
    )
    kind = forms.ChoiceField(
        choices=[
            ("catalogue", "Catalogue: full items (may create products)"),
            ("partial", "Partial: items change only what they give (keyed by upc or SKU)"),
            ("stock", "Stock file of one partner: sku, price, num_in_stock"),
        ],
        initial="catalogue",
        required=False,
        help_text="A stock file needs no mapping: give its partner below.",
    )
    partner = forms.CharField(
        required=False,
        max_length=128,
        help_text="Stock file: the partner whose stock records its rows are.",
    )
    batch_size = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, required=False)
    allow_mass_change = forms.BooleanField(
        required=False,
        label="Allow a mass change",
        help_text="A deliberate repricing: else a feed that would clear, zero or change one "
        "field of most of the products it matches stops before it writes anything.",
    )
    action = forms.ChoiceField(
        choices=[("preview", "Preview (change nothing)"), ("sync", "Sync now")],
        initial="preview",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch_size"].help_text = (
            f"Empty: {app_settings.BATCH_SIZE}, or {app_settings.PARTIAL_BATCH_SIZE} for a"
            " partial feed (a stock file)."
        )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if url and not is_url(url):
            raise forms.ValidationError("Give an http:// or https:// URL.")
        return url

    def clean(self) -> dict:
        data = super().clean()
        data["kind"] = data.get("kind") or "catalogue"
        limit = app_settings.UPLOAD_MAX_BYTES
        for name in ("file", "mapping"):
            upload = data.get(name)
            if upload is not None and upload.size > limit:
                self.add_error(name, f"The file is larger than the limit of {limit} bytes.")
        if data.get("kind") == "stock" and not (data.get("partner") or "").strip():
            self.add_error("partner", "A stock file needs its partner.")
        if data.get("kind") == "catalogue" and (data.get("partner") or "").strip():
            self.add_error("partner", "Only a stock file or a partial feed names a partner.")
        if data.get("mapping") and data.get("preset"):
            self.add_error("preset", "Give a mapping file or a preset, not both.")
        if bool(data.get("file")) == bool(data.get("url")):
            raise forms.ValidationError("Give either a file or a URL.")
        return data


class RetryForm(forms.Form):
    duplicates = forms.BooleanField(
        required=False,
        label="Also write the items that failed as a duplicate of an earlier item of the feed",
        help_text="Each would overwrite the product its earlier twin wrote.",
    )
