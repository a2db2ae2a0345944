-- Incident history, notifications and follows.
-- History and notifications name their actor with ON DELETE RESTRICT: a user who changed
-- an incident cannot be deleted (deactivate them instead), so the record stays whole.
-- depends: 20261124_03_incidents
CREATE TABLE incident_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    actor_id    bigint NOT NULL REFERENCES users ON DELETE RESTRICT,
    action      text NOT NULL CONSTRAINT incident_history_action CHECK (action IN
                ('created', 'updated', 'status_changed', 'assigned', 'categorized', 'commented', 'resolved')),
    changes     jsonb NOT NULL CONSTRAINT incident_history_changes_object CHECK (jsonb_typeof(changes) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE follows (
    follower_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    followee_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CONSTRAINT follows_not_self CHECK (follower_id <> followee_id)
);

CREATE TABLE notifications (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    event       text NOT NULL CONSTRAINT notifications_event CHECK (event IN
                ('assigned', 'resolved', 'followed_reported', 'followed_resolved')),
    incident_id bigint NOT NULL REFERENCES incidents ON DELETE CASCADE,
    actor_id    bigint NOT NULL REFERENCES users ON DELETE RESTRICT,
    read        boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_not_own_action CHECK (user_id <> actor_id)
);
