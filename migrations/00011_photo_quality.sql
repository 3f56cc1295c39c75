-- A photo's quality, measured by the thumbnailer from the decode it makes anyway
-- (imagestore.Quality: sharpness, mean luminance, clipped highlights and shadows, and the
-- flags those give): null until its thumbnails are made.

-- +goose Up
alter table photos add column quality jsonb;

-- +goose Down
alter table photos drop column quality;
