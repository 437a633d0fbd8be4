import HTTPKit

/// Who may use what: one authorization point per object kind (connection data, token, map, job). Routes
/// call these and nothing else, so a rule changes in one place and a new route cannot forget a case.
/// Refusals on objects a principal may not even see answer "not found": their existence is not revealed.
public extension Principal {
    // MARK: connections (writing their data: batch jobs, imports, geocode-table)

    /// Writing needs a `*` grant on the connection (tokens; without a connection, grants are checked by the
    /// caller per table) and a role that writes (not viewers, their tokens, map tokens).
    /// `what` completes "… cannot <what>".
    func requireWrite(to connection: String?, _ what: String) throws {
        if case .apiToken = kind, let connection {
            guard case .everything = access(to: connection) else {
                throw APIError.forbidden("Writing (\(what)) needs full access to the connection", code: "source_not_granted")
            }
        }
        if actsAsViewer {
            let who = isMapToken ? "A map's token" : isUser ? "Viewers" : "This token (its creator is a viewer)"
            throw APIError.forbidden("\(who) cannot \(what)", code: "role_forbidden")
        }
    }

    // MARK: API access tokens

    enum TokenAction: Sendable { case read, change }

    /// Reading or changing a token: its creator or an admin of its organisation; changing also needs a
    /// write role. Everyone else is told it does not exist.
    func authorize(token createdBy: String?, account: String, _ action: TokenAction) throws {
        let (user, role) = try requireUser()
        guard account == accountId, role == .admin || (createdBy != nil && createdBy == user) else {
            throw APIError.notFound("Token not found")
        }
        if action == .change, role == .viewer {
            throw APIError.forbidden("Your role (viewer) cannot change tokens", code: "role_forbidden")
        }
    }

    /// OAuth clients are credentials like tokens: only their owner or an admin deletes one.
    func authorize(oauthClient owner: String?, account: String) throws {
        do { try authorize(token: owner, account: account, .change) } catch let e as APIError where e.status == 404 {
            throw APIError.notFound("OAuth client not found")
        }
    }

    /// Whether a token listing shows this token (same rule as reading it).
    func mayRead(token createdBy: String?, account: String) -> Bool {
        (try? authorize(token: createdBy, account: account, .read)) != nil
    }

    // MARK: maps

    /// Who sees a map: `private` its owner and the organisation's admins, `organization` everyone in the
    /// organisation, `public` anyone.
    enum MapPrivacy: String, Sendable, CaseIterable {
        case `private`, organization, `public`
    }

    enum MapAction: Sendable { case read, write }

    /// Reading a map through the workspace or the public endpoint: public maps anyone; otherwise a member of
    /// its organisation (a user, or a token acting with its creator's role; never a map's token), and for
    /// private maps only the owner or an admin. Writing needs a user with a write role.
    func authorize(map account: String, owner: String?, privacy: MapPrivacy, _ action: MapAction) throws {
        let notFound = APIError.notFound("Map not found", code: "map_not_found")
        if action == .read, privacy == .public { return }
        guard account == accountId, let role = role ?? (isMapToken ? nil : creatorRole) else { throw notFound }
        if privacy == .private, role != .admin, owner == nil || owner != userId { throw notFound }
        if action == .write, !isUser || role == .viewer {
            throw APIError.forbidden("Your role cannot change maps", code: "role_forbidden")
        }
    }

    // MARK: workflows

    enum WorkflowAction: Sendable { case read, write, run }

    /// Workflows share the maps' privacy levels (reading); changing one needs a user with a write role;
    /// running one needs a write role too (users, or tokens whose creator has one and whose grants give the
    /// whole workflow's connection) — viewers cannot run workflows, since a run writes to the warehouse.
    func authorize(workflow account: String, owner: String?, privacy: MapPrivacy, connection: String, _ action: WorkflowAction) throws {
        let notFound = APIError.notFound("Workflow not found", code: "workflow_not_found")
        guard account == accountId, !isMapToken, let role = role ?? creatorRole else { throw notFound }
        if privacy == .private, role != .admin, owner == nil || owner != userId { throw notFound }
        switch action {
        case .read: return
        case .write:
            if !isUser || role == .viewer { throw APIError.forbidden("Your role cannot change workflows", code: "role_forbidden") }
        case .run: try requireWrite(to: connection, "run workflows")
        }
    }

    // MARK: jobs (SQL batch jobs, imports, geocode-table)

    /// Listing or reading a job: its creator, or an admin of its organisation. A map's token never sees jobs
    /// (a public map's visitors are anonymous).
    func authorize(job account: String?, createdBy: String?) throws {
        let notFound = APIError.notFound("Job not found", code: "job_not_found")
        guard !isMapToken, account == accountId else { throw notFound }
        if role == .admin { return }
        guard let userId, createdBy == userId else { throw notFound }
    }

    /// Job endpoints are not for a map's token at all (listing them would show other people's SQL).
    func requireJobAccess() throws {
        if isMapToken { throw APIError.forbidden("A map's token cannot use job endpoints", code: "map_token_forbidden") }
    }

    /// The jobs of a listing this principal may see.
    func visibleJobs<J>(_ jobs: [J], account: (J) -> String?, createdBy: (J) -> String?) throws -> [J] {
        try requireJobAccess()
        return jobs.filter { mayRead(job: account($0), createdBy: createdBy($0)) }
    }

    func mayRead(job account: String?, createdBy: String?) -> Bool {
        (try? authorize(job: account, createdBy: createdBy)) != nil
    }
}
