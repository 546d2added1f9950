"""The domain error hierarchy: one class per documented upstream error code.

Every error the emulator can answer is a :class:`DomainError`. Its class attributes carry the
upstream ``type`` (one of five), the stable ``code``, the HTTP ``status`` and a message template;
``api/errors.py`` renders it into the upstream envelope. ``core`` never raises HTTP exceptions.

    DomainError
    ├── InvalidRequestError          type=invalid_request
    │   ├── MissingFieldError                400 missing_field
    │   ├── InvalidFormatError               400 invalid_format
    │   ├── ValueOutOfRangeError             400 value_out_of_range
    │   ├── UnsupportedLoraForModeError      400 unsupported_lora_for_mode
    │   ├── ParameterInvalidCombinationError 400 parameter_invalid_combination
    │   ├── MutuallyExclusiveInputError      400 mutually_exclusive_input
    │   ├── UnknownVersionError              400 unknown_version
    │   ├── GenerationNotCancellableError    400 generation_not_cancellable
    │   ├── CharacterNotReadyError           400 character_not_ready
    │   ├── UploadInvalidError               400 upload_invalid
    │   ├── InvalidRequestStateError         400 invalid_request_error
    │   ├── TooManyBucketsError              400 too_many_buckets
    │   ├── InvalidPageTokenError            400 invalid_page_token
    │   ├── PromptBlockedError               400 prompt_blocked
    │   ├── ReferenceBlockedError            400 reference_blocked
    │   ├── UnknownReferenceError            400 resource_not_found (a referenced id in the body)
    │   ├── BalanceTooLowError               402 balance_too_low
    │   ├── InsufficientCreditsError         402 insufficient_credits
    │   ├── IdempotencyKeyInUseError         409 idempotency_key_in_use
    │   ├── OutputModerationRejectedError    422 output_moderation_rejected
    │   ├── OutputNotAvailableError          422 output_not_available
    │   ├── PayloadTooLargeError             413 value_out_of_range
    │   ├── UriTooLongError                  414 value_out_of_range (emulator only)
    │   └── HeadersTooLargeError             431 value_out_of_range (emulator only)
    ├── AuthenticationError          type=authentication
    │   ├── MissingApiKeyError               401 missing_api_key
    │   ├── InvalidApiKeyError               401 invalid_api_key
    │   ├── RevokedApiKeyError               401 revoked_api_key
    │   ├── MissingScopeError                403 missing_scope
    │   └── ForeignOriginError               403 foreign_origin (emulator only: the control plane)
    ├── NotFoundError                type=not_found
    │   ├── ResourceNotFoundError            404 resource_not_found
    │   ├── RouteNotFoundError               404 resource_not_found (unknown URL)
    │   ├── MethodNotAllowedError            405 resource_not_found (known URL, wrong method)
    │   └── OutputExpiredError               410 output_expired
    ├── RateLimitError               type=rate_limit
    │   ├── TooManyRequestsError             429 too_many_requests
    │   └── ConcurrencyLimitExceededError    429 concurrency_limit_exceeded
    └── ServerError                  type=server_error
        ├── InternalError                    500 internal_error
        ├── NotEmulatedError                 501 not_implemented (emulator only)
        ├── ProviderUnavailableError         503 provider_unavailable
        │   └── ProviderBadGatewayError      502 provider_unavailable (scenario provider_unavailable)
        └── ProviderTimeoutError             504 provider_timeout

LLM surfaces (fact sheet aurous-llm-v1.md §11), in the same branches:

    InvalidRequestError
    ├── ModelWrongKindError                      400 model_wrong_kind
    ├── MaxTokensExceedsHardCapError             400 max_tokens_exceeds_hard_cap
    ├── MissingMaxTokensNoModelDefaultError      400 missing_max_tokens_no_model_default
    ├── MaxInputTokensExceededError              400 max_input_tokens_exceeded
    ├── ToolChoiceRequiredUnsupportedError       400 tool_choice_required_unsupported
    ├── ResponseFormatTooLargeError              400 response_format_too_large
    ├── ResponseFormatTooDeepError               400 response_format_too_deep
    ├── EmbeddingsInputTooManyItemsError         400 embeddings_input_too_many_items
    ├── EmbeddingsVideoUnsupportedError          400 embeddings_video_unsupported
    ├── EmbeddingsInputTooLargeError             400 embeddings_input_too_large
    ├── EmbeddingsBatchNotSupportedError         400 embeddings_batch_not_supported
    ├── EmbeddingsUnsupportedDimensionsError     400 embeddings_unsupported_dimensions
    ├── ChatCancelTargetAlreadyTerminalError     409 chat_cancel_target_already_terminal
    └── ChatCancelTargetNotCancellableError      409 chat_cancel_target_not_cancellable
    NotFoundError
    └── ChatCancelTargetNotFoundError            404 chat_cancel_target_not_found
    RateLimitError
    ├── TpmRateLimitExceededError                429 tpm_rate_limit_exceeded
    └── ProviderRateLimitedError                 503 provider_rate_limited
    ServerError
    ├── ChatProviderUnavailableError             502 chat_provider_unavailable
    └── EmbeddingsProviderUnknownError           502 embeddings_provider_unknown_error
"""

from __future__ import annotations

from typing import Any, ClassVar

DOC_URL_BASE = "https://docs.aurous-labs.com/errors#"


class DomainError(Exception):
    """Base of every error answered in the upstream envelope.

    Subclasses set ``type``, ``code``, ``status`` and ``message`` (a ``str.format`` template).
    Instances may override the message and name the offending request field in ``param``.
    """

    type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    message: ClassVar[str] = "An internal error occurred."

    def __init__(self, message: str | None = None, *, param: str | None = None, **fmt: Any) -> None:
        self.param = param
        self.detail = message if message is not None else self.message.format(**fmt)
        self.headers: dict[str, str] = {}
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, param={self.param!r}, message={self.detail!r})"


# --- invalid_request -----------------------------------------------------------------------------


class InvalidRequestError(DomainError):
    type = "invalid_request"
    code = "invalid_format"
    status = 400
    message = "The request is invalid."


class MissingFieldError(InvalidRequestError):
    code = "missing_field"
    message = "Missing required field: {field}."


class InvalidFormatError(InvalidRequestError):
    code = "invalid_format"
    message = "Invalid value for {field}."


class ValueOutOfRangeError(InvalidRequestError):
    code = "value_out_of_range"
    message = "Value out of range for {field}."


class UnsupportedLoraForModeError(InvalidRequestError):
    code = "unsupported_lora_for_mode"
    message = "LoRA {lora} does not support {mode}."


class ParameterInvalidCombinationError(InvalidRequestError):
    code = "parameter_invalid_combination"
    message = "Parameters {first} and {second} cannot be combined."


class MutuallyExclusiveInputError(InvalidRequestError):
    code = "mutually_exclusive_input"
    message = "character_id and reference_image_urls are mutually exclusive."


class UnknownVersionError(InvalidRequestError):
    code = "unknown_version"
    message = "Unknown Aurous-Version {version}. Published versions: {published}."


class GenerationNotCancellableError(InvalidRequestError):
    code = "generation_not_cancellable"
    message = "Generation {id} is {status} and can no longer be cancelled."


class CharacterNotReadyError(InvalidRequestError):
    code = "character_not_ready"
    message = "Character {id} is not ready."


class UploadInvalidError(InvalidRequestError):
    code = "upload_invalid"
    message = "Upload {id} is unknown, expired or already consumed."


class InvalidRequestStateError(InvalidRequestError):
    code = "invalid_request_error"
    message = "The resource is in a state that does not allow this operation."


class TooManyBucketsError(InvalidRequestError):
    code = "too_many_buckets"
    message = "The requested range produces {count} buckets; the maximum is {maximum}."


class InvalidPageTokenError(InvalidRequestError):
    code = "invalid_page_token"
    message = "The page_token is invalid, expired, or does not match the query."


class PromptBlockedError(InvalidRequestError):
    code = "prompt_blocked"
    message = "The prompt was blocked by the content policy."


class ReferenceBlockedError(InvalidRequestError):
    code = "reference_blocked"
    message = "A reference image was blocked by the content policy."


class UnknownReferenceError(InvalidRequestError):
    """A resource named inside the request body does not exist (emulator choice, reference §8.16)."""

    code = "resource_not_found"
    message = "No such resource: {id}."


class BalanceTooLowError(InvalidRequestError):
    code = "balance_too_low"
    status = 402
    message = "Team available balance is {available} credits, generation requires {required}."


class InsufficientCreditsError(InvalidRequestError):
    code = "insufficient_credits"
    status = 402
    message = "Team available balance is {available} credits, this operation requires {required}."


class IdempotencyKeyInUseError(InvalidRequestError):
    code = "idempotency_key_in_use"
    status = 409
    message = "This Idempotency-Key is already in use by another request."


class OutputModerationRejectedError(InvalidRequestError):
    code = "output_moderation_rejected"
    status = 422
    message = "The output was rejected by moderation."


class OutputNotAvailableError(InvalidRequestError):
    code = "output_not_available"
    status = 422
    message = "Generation {id} has no output ({status})."


class PayloadTooLargeError(InvalidRequestError):
    code = "value_out_of_range"
    status = 413
    message = "The request body exceeds {limit} bytes."


class UriTooLongError(InvalidRequestError):
    """Upstream's limit on the request target is not documented; the emulator's is ``max_url_bytes``."""

    code = "value_out_of_range"
    status = 414
    message = "The request path and query string exceed {limit} bytes."


class HeadersTooLargeError(InvalidRequestError):
    """Upstream's limit on the request head is not documented; the emulator's is ``max_header_bytes``."""

    code = "value_out_of_range"
    status = 431
    message = "The request line and headers exceed {limit} bytes."


# --- authentication --------------------------------------------------------------------------------


class AuthenticationError(DomainError):
    type = "authentication"
    code = "invalid_api_key"
    status = 401
    message = "Authentication failed."


class MissingApiKeyError(AuthenticationError):
    code = "missing_api_key"
    message = "No API key provided. Send it in the X-Api-Key header."


class InvalidApiKeyError(AuthenticationError):
    code = "invalid_api_key"
    # The vendor's sentence, then what the emulator accepts (the docs never spell out a key's format).
    message = (
        "The API key is invalid. A well-formed key is al_live_… or og_… followed by 1-200 letters, digits, "
        "'_' or '-', sent as X-Api-Key or Authorization: Bearer."
    )


class RevokedApiKeyError(AuthenticationError):
    code = "revoked_api_key"
    message = "The API key has been revoked."


class MissingScopeError(AuthenticationError):
    code = "missing_scope"
    status = 403
    message = "This API key has scope {have}; this operation requires {need}."


class ForeignOriginError(AuthenticationError):
    """A browser request to the control plane from another site (aurous-mock only: any page can reach loopback)."""

    code = "foreign_origin"
    status = 403
    message = "The control plane refuses state changes from another origin ({origin})."


# --- not_found -------------------------------------------------------------------------------------


class NotFoundError(DomainError):
    type = "not_found"
    code = "resource_not_found"
    status = 404
    message = "Not found."


class ResourceNotFoundError(NotFoundError):
    message = "No such {kind}: {id}."


class RouteNotFoundError(NotFoundError):
    message = "Unrecognized request URL ({method} {path})."


class MethodNotAllowedError(NotFoundError):
    status = 405
    message = "Method {method} is not allowed on {path}."


class OutputExpiredError(NotFoundError):
    code = "output_expired"
    status = 410
    message = "The output of generation {id} has expired."


# --- rate_limit ------------------------------------------------------------------------------------


class RateLimitError(DomainError):
    type = "rate_limit"
    code = "too_many_requests"
    status = 429
    message = "Rate limit exceeded."


class TooManyRequestsError(RateLimitError):
    message = "Rate limit exceeded for {bucket}. Retry after {retry_after}s."


class ConcurrencyLimitExceededError(RateLimitError):
    code = "concurrency_limit_exceeded"
    message = "Too many generations in flight ({limit})."


# --- server_error ----------------------------------------------------------------------------------


class ServerError(DomainError):
    pass


class InternalError(ServerError):
    pass


class NotEmulatedError(ServerError):
    """An operation of the public surface that the emulator does not answer yet (never silently wrong)."""

    code = "not_implemented"
    status = 501
    message = "{operation} is not emulated yet by aurous-mock."


class ProviderUnavailableError(ServerError):
    code = "provider_unavailable"
    status = 503
    message = "The generation provider is unavailable."


class ProviderBadGatewayError(ProviderUnavailableError):
    """The same code with 502: the reference maps ``server_error`` to 500/502/503/504 without pairing them."""

    status = 502


class ProviderTimeoutError(ServerError):
    code = "provider_timeout"
    status = 504
    message = "The generation provider timed out."


# --- LLM surfaces (fact sheet aurous-llm-v1.md §11) ------------------------------------------------


class ModelWrongKindError(InvalidRequestError):
    code = "model_wrong_kind"
    message = "Model {model} is a {kind} model; this endpoint needs a {expected} model."


class MaxTokensExceedsHardCapError(InvalidRequestError):
    code = "max_tokens_exceeds_hard_cap"
    message = "max_tokens {max_tokens} exceeds the model's hard cap of {cap} for {model}. Lower max_tokens."


class MissingMaxTokensNoModelDefaultError(InvalidRequestError):
    code = "missing_max_tokens_no_model_default"
    message = "Model {model} has no default max_tokens; send max_tokens."


class MaxInputTokensExceededError(InvalidRequestError):
    code = "max_input_tokens_exceeded"
    message = "The input has {tokens} tokens; the context window of {model} is {limit}."


class ToolChoiceRequiredUnsupportedError(InvalidRequestError):
    code = "tool_choice_required_unsupported"
    message = 'Model {model} does not support tool_choice "required".'


class ResponseFormatTooLargeError(InvalidRequestError):
    code = "response_format_too_large"
    message = "The response_format schema is {size} bytes; the limit is {limit}."


class ResponseFormatTooDeepError(InvalidRequestError):
    code = "response_format_too_deep"
    message = "The response_format schema nests {depth} levels deep; the limit is {limit}."


class EmbeddingsInputTooManyItemsError(InvalidRequestError):
    code = "embeddings_input_too_many_items"
    message = "Embedding request has {count} content parts; the cap is {cap} total parts per request."


class EmbeddingsVideoUnsupportedError(InvalidRequestError):
    code = "embeddings_video_unsupported"
    message = "video_url parts are not supported by embeddings."


class EmbeddingsInputTooLargeError(InvalidRequestError):
    code = "embeddings_input_too_large"
    message = "Embedding input has {tokens} tokens; the cap is {limit}."


class EmbeddingsBatchNotSupportedError(InvalidRequestError):
    code = "embeddings_batch_not_supported"
    message = (
        "POST /v1/embeddings does not accept string[] batch input. The underlying multimodal model concatenates "
        "batched text into a single combined vector — opposite of OpenAI's N→N semantics. Loop client-side or use "
        "content-parts input. See https://docs.aurous-labs.com/api-reference/embeddings/openai-batch-incompat."
    )


class EmbeddingsUnsupportedDimensionsError(InvalidRequestError):
    code = "embeddings_unsupported_dimensions"
    message = "dimensions {dimensions} is not supported by {model}; supported: {supported}."


class ChatCancelTargetAlreadyTerminalError(InvalidRequestError):
    code = "chat_cancel_target_already_terminal"
    status = 409
    message = "Chat completion {id} is already {status}."


class ChatCancelTargetNotCancellableError(InvalidRequestError):
    code = "chat_cancel_target_not_cancellable"
    status = 409
    message = "Chat completion {id} cannot be cancelled; poll GET /v1/chat/completions/{id} for its final state."


class ChatCancelTargetNotFoundError(NotFoundError):
    code = "chat_cancel_target_not_found"
    message = "No such chat completion: {id}."


class TpmRateLimitExceededError(RateLimitError):
    code = "tpm_rate_limit_exceeded"
    message = "Tokens-per-minute limit exceeded. Retry after {retry_after}s."


class ProviderRateLimitedError(RateLimitError):
    code = "provider_rate_limited"
    status = 503
    message = "The model provider is rate limiting requests."


class ChatProviderUnavailableError(ServerError):
    code = "chat_provider_unavailable"
    status = 502
    message = "Provider request failed."


class EmbeddingsProviderUnknownError(ServerError):
    code = "embeddings_provider_unknown_error"
    status = 502
    message = "The embeddings provider returned an unknown error."
