"""Tags: TagResource, UntagResource, ListTagsForResource on data stores and image sets."""

from __future__ import annotations

from collections.abc import Sequence

from .. import ids
from ..apierrors import ResourceNotFoundException, ValidationException
from ..models import Datastore, ImageSet
from .datastores import DatastoreRules


class TagRules(DatastoreRules):
    """The tags of data stores and image sets, found by ARN."""

    def _tagged(self, arn: str) -> Datastore | ImageSet:
        parsed = ids.parse_arn(arn)
        if parsed is None:
            raise ValidationException(f"resourceArn {arn!r} is not a HealthImaging ARN")
        region, account, datastore_id, image_set_id = parsed
        if (region, account) != (self.region, self.account_id):
            raise ResourceNotFoundException(f"resource {arn} does not exist")
        ds = self.datastores.get(datastore_id)
        if ds is None or self.datastore_status(ds) == "DELETED":
            raise ResourceNotFoundException(f"data store {datastore_id} does not exist")
        if image_set_id is None:
            return ds
        iset = self.image_sets.get(image_set_id)
        if iset is not None:
            self._settle(iset)
        if iset is None or iset.datastore_id != datastore_id or iset.latest.state == "DELETED":
            raise ResourceNotFoundException(f"image set {image_set_id} does not exist")
        return iset

    def _save_tagged(self, obj: Datastore | ImageSet) -> None:
        with self.store.transaction():
            if isinstance(obj, Datastore):
                self._save_datastore(obj)
            else:
                self._save_image_set(obj)

    def tag_resource(self, arn: str, tags: dict[str, str]) -> None:
        self._check_tags(tags)
        with self.lock:
            obj = self._tagged(arn)
            obj.tags.update(tags)
            self._save_tagged(obj)

    def untag_resource(self, arn: str, keys: Sequence[str]) -> None:
        with self.lock:
            obj = self._tagged(arn)
            for key in keys:
                obj.tags.pop(key, None)
            self._save_tagged(obj)

    def list_tags(self, arn: str) -> dict[str, str]:
        with self.lock:
            return dict(self._tagged(arn).tags)
