"""The API's request and response models, and its limits (they show in the OpenAPI spec)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from deepcart.data.schema import ASIN_PATTERN, USER_ID_PATTERN

#: Most recommendations per user in one answer.
MAX_K = 100
#: Most user ids in one ``users=`` list.
MAX_USERS = 100
#: Most users ``/random_users`` returns.
MAX_N = 1000
MAX_TITLE = 500
MAX_TEXT = 20_000


Mode = Literal["best", "worst"]
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN, description="a user id")]
Asin = Annotated[str, Field(pattern=ASIN_PATTERN, description="a product's parent_asin")]


class WorstReview(BaseModel):
    """The most helpful low-rated review of a product (worst mode)."""

    title: str | None
    excerpt: str
    rating: float
    helpful_vote: int


class Item(BaseModel):
    parent_asin: str
    title: str | None
    price: float | None
    average_rating: float | None
    image: str | None
    score: float = Field(description="ranking score: higher is a stronger recommendation")
    fallback: bool = Field(description="true: the cold-start list, not the user's own")
    worst_review: WorstReview | None = Field(
        default=None, description="worst mode only: the review that proves the product is bad"
    )


class UserRecommendations(BaseModel):
    user_id: str
    mode: Mode
    k: int
    known: bool = Field(description="the user is in the training data")
    fallback: bool = Field(
        description="true: nothing is known about the user yet, so this is the cold-start list"
    )
    items: list[Item]


class ReviewIn(BaseModel):
    """A review submitted by a user; a second review of the same item replaces the first."""

    model_config = ConfigDict(extra="forbid")

    parent_asin: Asin
    rating: int = Field(ge=1, le=5, description="1 to 5 stars")
    title: str | None = Field(default=None, max_length=MAX_TITLE)
    text: str | None = Field(default=None, max_length=MAX_TEXT)

    @field_validator("title", "text")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL refuses NUL in text: the whole group commit would fail (503), other
        # users' reviews with it. Refused here, for every database alike.
        if value is not None and "\x00" in value:
            raise PydanticCustomError("string_nul", "must not contain the NUL character (\\u0000)")
        return value

    @field_validator("rating", mode="before")
    @classmethod
    def _a_json_number(cls, value: object) -> object:
        # Lax validation reads true as 1 (a client's mistake stored as a one-star review) and
        # " +4 " as 4: the spec says integer, so a boolean or a string is refused.
        if isinstance(value, bool | str):
            kind = "a boolean" if isinstance(value, bool) else "a string"
            raise PydanticCustomError("int_type", f"Input should be a valid integer, not {kind}")
        return value


class Review(BaseModel):
    user_id: str
    parent_asin: str
    rating: float
    title: str | None
    text: str | None
    timestamp: int = Field(description="when the server stored it, Unix milliseconds")


class UserReviews(BaseModel):
    user_id: str
    known: bool = Field(description="the user is in the training data")
    training_ratings: int = Field(description="how many ratings the user has in the training data")
    reviews: list[Review] = Field(description="the reviews the user submitted here, oldest first")


class ItemDetail(BaseModel):
    parent_asin: str
    title: str | None
    main_category: str | None
    store: str | None
    price: float | None
    average_rating: float | None
    rating_number: int | None
    categories: list[str]
    features: list[str] = Field(description="the product's bullet points")
    description: list[str] = Field(description="the product description, one entry a paragraph")
    image: str | None
    ratings: int = Field(description="ratings of the item in the training data")
    worst_review: WorstReview | None


class Health(BaseModel):
    status: Literal["ok"]
    pid: int = Field(description="the worker process that answered")
    version: int = Field(description="increases with every successful reload")
    loaded_at: int = Field(description="when the current state was loaded, Unix milliseconds")
    data_tag: str
    model: str
    modes: list[Mode]
    users: int
    items: int


class ReloadResult(BaseModel):
    status: str
    version: int
    seconds: float
    detail: str


class Problem(BaseModel):
    """One problem of a request that failed validation."""

    loc: list[str] = Field(description="where: e.g. ['query', 'k'] or ['body', 'rating']")
    name: str = Field(description="the parameter, as the message names it")
    msg: str


class ErrorOut(BaseModel):
    """Every error answer (4xx and 5xx) has this shape."""

    message: str = Field(description="one line for a person: what went wrong, naming the input")
    detail: str | list[Problem] = Field(
        description="a 422's problems, one each; for any other status, the same text as message"
    )


class ValidationErrorOut(ErrorOut):
    """A 422: the request's parameters or body did not validate."""

    message: str = Field(description="the first problem, naming the parameter")
    detail: list[Problem]
