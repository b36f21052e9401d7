"""Writing a project's or a task's labels with CVAT's merge semantics.

A label without an ``id`` is added; one with an ``id`` updates that label; one with
``"deleted": true`` is removed together with its annotations. Labels not mentioned stay.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from labelyard.domain import AttributeSpec, InputType, Label
from labelyard.domain.labels import LABEL_NAME_MAX, LABEL_PALETTE
from labelyard.services.errors import FieldErrors
from labelyard.services.fields import Id, WriteModel
from labelyard.services.uow import UnitOfWork

Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


class AttributeIn(WriteModel):
    id: Id | None = None
    name: str = Field(min_length=1, max_length=64)
    mutable: bool = False
    input_type: InputType
    default_value: str = Field(default="", max_length=128)
    values: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_input_type(self) -> AttributeIn:
        kind = self.input_type
        if kind in (InputType.SELECT, InputType.RADIO):
            if not self.values:
                raise ValueError(f"A {kind} attribute needs at least one value.")
            if not self.default_value:
                self.default_value = self.values[0]
            elif self.default_value not in self.values:
                raise ValueError("default_value must be one of values.")
        elif kind == InputType.CHECKBOX:
            self.default_value = (self.default_value or "false").lower()
            if self.default_value not in ("true", "false"):
                raise ValueError('A checkbox default_value is "true" or "false".')
            if not self.values:
                self.values = [self.default_value]
        elif kind == InputType.NUMBER:
            try:
                low, high, step = (float(v) for v in self.values)
            except ValueError:
                raise ValueError(
                    "A number attribute's values are [min, max, step], three numbers."
                ) from None
            if not (low < high and step > 0):
                raise ValueError("A number attribute needs min < max and step > 0.")
            if not self.default_value:
                self.default_value = self.values[0]
            try:
                default = float(self.default_value)
            except ValueError:
                raise ValueError("default_value must be a number.") from None
            if not low <= default <= high:
                raise ValueError("default_value must lie between min and max.")
        elif not self.values:
            self.values = [self.default_value]
        return self


class LabelIn(WriteModel):
    id: Id | None = None
    name: str = Field(min_length=1, max_length=LABEL_NAME_MAX)
    color: Color | None = None
    attributes: list[AttributeIn] = Field(default_factory=list)
    deleted: bool = False


def apply_labels(
    uow: UnitOfWork, labels: list[Label], changes: list[LabelIn], path: str = "labels"
) -> None:
    """Merge ``changes`` into ``labels`` (the relationship list of a task or project),
    or raise InvalidInput naming every bad entry without changing anything."""
    errors = FieldErrors()
    by_id = {label.id: label for label in labels}
    final_names: dict[int, str] = {label.id: label.name for label in labels}
    new_names: list[tuple[int, str]] = []
    for index, change in enumerate(changes):
        where = f"{path}.{index}"
        if change.id is not None:
            label = by_id.get(change.id)
            if label is None:
                errors.add(f"{where}.id", f"Label {change.id} does not belong here.")
                continue
            if change.deleted:
                final_names.pop(label.id, None)
                continue
            final_names[label.id] = change.name
            spec_ids = {spec.id for spec in label.attributes}
            for a_index, attribute in enumerate(change.attributes):
                if attribute.id is not None and attribute.id not in spec_ids:
                    errors.add(
                        f"{where}.attributes.{a_index}.id",
                        f"Attribute {attribute.id} does not belong to label {label.id}.",
                    )
        elif change.deleted:
            errors.add(f"{where}.deleted", "Only an existing label (with an id) can be deleted.")
        else:
            new_names.append((index, change.name))
        _check_attribute_names(change, where, errors)

    seen: set[str] = set(final_names.values())
    if len(seen) != len(final_names):
        errors.add(path, "Label names must be unique.")
    for index, name in new_names:
        if name in seen:
            errors.add(f"{path}.{index}.name", f'A label named "{name}" already exists.')
        seen.add(name)
    errors.raise_if_any()

    # Deletions reach the database first, so that a new label may take a deleted one's name.
    for change in changes:
        if change.deleted:
            labels.remove(by_id[change.id])  # type: ignore[index]
    uow.flush()
    for change in changes:
        if change.deleted:
            continue
        if change.id is None:
            label = Label(name=change.name, color=change.color or "")
            labels.append(label)
        else:
            label = by_id[change.id]
            label.name = change.name
            if change.color:
                label.color = change.color
        _apply_attributes(label, change.attributes)
    _assign_colors(labels)


def _check_attribute_names(change: LabelIn, where: str, errors: FieldErrors) -> None:
    names = [attribute.name for attribute in change.attributes]
    for a_index, name in enumerate(names):
        if name in names[:a_index]:
            errors.add(f"{where}.attributes.{a_index}.name", f'Attribute "{name}" is repeated.')


def _apply_attributes(label: Label, changes: list[AttributeIn]) -> None:
    specs = {spec.id: spec for spec in label.attributes}
    for change in changes:
        spec = specs.get(change.id) if change.id is not None else None
        if spec is None:
            spec = AttributeSpec()
            label.attributes.append(spec)
        spec.name = change.name
        spec.mutable = change.mutable
        spec.input_type = change.input_type.value
        spec.default_value = change.default_value
        spec.values = list(change.values)


def _assign_colors(labels: list[Label]) -> None:
    used = {label.color.lower() for label in labels if label.color}
    free = [color for color in LABEL_PALETTE if color not in used]
    for index, label in enumerate(label for label in labels if not label.color):
        label.color = free[index] if index < len(free) else _color_for(label.name, index)


def _color_for(name: str, index: int) -> str:
    """Past the palette: a stable color from the name."""
    value = (sum(map(ord, name)) * 2654435761 + index * 40503) & 0xFFFFFF
    return f"#{value:06x}"
