-- A clinic user's language for the clinic's pages: English or Simplified Chinese; null until
-- the user chooses, when the pages follow the browser's Accept-Language.

-- +goose Up
alter table users add column language text check (language in ('en', 'zh-CN'));

-- +goose Down
alter table users drop column language;
