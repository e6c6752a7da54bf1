-- Controller leadership: who leads and since which epoch. Controller writes name the epoch
-- they were decided under and are refused once another leader has taken over (fencing).
CREATE TABLE leader (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    epoch   INTEGER NOT NULL,
    holder  TEXT NOT NULL,
    since   TEXT NOT NULL
);
INSERT INTO leader (id, epoch, holder, since) VALUES (1, 0, '', '');
