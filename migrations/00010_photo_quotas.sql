-- What a parent link has sent, counted for its quotas (followup/photo_quota.go): the link's
-- photos by time. Photos of a step are counted through photos_procedure.

-- +goose Up
create index photos_parent_link on photos (parent_link_id, received_at) where parent_link_id is not null;

-- +goose Down
drop index photos_parent_link;
